"""The composition root: builds every adapter and application service from the settings, once, owns them
and closes them. No behaviour of its own: the use cases live in app/, the parts below it.

The seams the scale-out layout swaps: `dispatcher` (who runs a runnable job: the in-process `WorkerPool` of
the embedded default, or the procrastinate queue with a PostgreSQL `database.url`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import ip_network
from pathlib import Path

from studio402.app.job_lifecycle import JobLifecycle, JobView, Republisher, TerminalHooks
from studio402.app.paid_request import ChallengeExtensions, PaidRequestConfig, PaidRequests
from studio402.app.ratelimit import TokenBuckets
from studio402.app.reconciler import Reconciler
from studio402.auth.siwx import SiwxVerifier
from studio402.backends.base import Backend
from studio402.backends.factory import build_backend
from studio402.backends.preview.backend import PreviewBackend
from studio402.backends.registry import BackendRegistry
from studio402.catalog import CATALOG, Catalog
from studio402.chain.devnet import Devnet, devnet_for
from studio402.chain.eip1271 import RpcEip1271Checker
from studio402.chain.facilitator import FacilitatorSettlement
from studio402.chain.refunds import EvmRefunder
from studio402.chain.rpc import AsyncRpc
from studio402.chain.settlement import EvmSettler
from studio402.chain.wallet import SettlerWallet
from studio402.config import NetworkSettings, RefundMethod, Settings, StorageBackend
from studio402.db.engine import Database, database_url, open_database
from studio402.db.job_store import SqlJobStore
from studio402.db.ledger_store import SqlLedgerStore
from studio402.db.refund_store import SqlRefundStore
from studio402.db.upload_store import SqlUploadStore
from studio402.db.webhook_store import SqlWebhookStore
from studio402.errors import ConfigError
from studio402.jobs import queue
from studio402.jobs.dispatch import Dispatcher, QueueDispatcher
from studio402.jobs.events import JobEvents
from studio402.jobs.queue_worker import QueueWorker
from studio402.jobs.runner import JobRunner, RunnerConfig
from studio402.jobs.view import job_view
from studio402.jobs.webhooks import WebhookSender
from studio402.jobs.worker import WorkerPool
from studio402.media.budget import DecodeLimits
from studio402.media.fetch import FetchPolicy, SafeFetcher
from studio402.media.resolver import BlobMediaLoader, MediaResolver
from studio402.money import Asset
from studio402.payments.engine import PaymentEngine
from studio402.payments.interfaces import PaymentMethod
from studio402.payments.methods.evm_exact import EvmExactMethod, EvmSettlement
from studio402.payments.offers import Offer
from studio402.payments.refunds import RefundSender, RefundService
from studio402.solana.rail import SolanaRail
from studio402.solana.rail import devnet_rail as solana_devnet_rail
from studio402.storage import open_blob_store
from studio402.storage.base import BlobStore, UrlSigner
from studio402.storage.s3 import S3BlobStore
from studio402.storage.uploads import UploadService
from studio402.tempo_rail import TempoRail, build_tempo_rail

log = logging.getLogger(__name__)
Closer = Callable[[], Awaitable[None]]
Refunders = dict[tuple[str, str], RefundSender]  # (network, asset) -> who sends its refunds


def build_registry(settings: Settings, catalog: Catalog) -> BackendRegistry:
    """`preview` always exists; every `[backends.providers.<name>]` adds an upstream adapter."""
    backends: dict[str, Backend] = {"preview": PreviewBackend(catalog)}
    for name, provider in settings.backends.providers.items():
        if provider.enabled:
            backends[name] = build_backend(name, provider)
    return BackendRegistry(backends, settings.backends.default, settings.backends.routes)


def load_secret(path: Path) -> bytes:
    """The instance's signing secret (blob URLs, upload tokens): created once, kept in the data dir."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def fetch_policy(settings: Settings) -> FetchPolicy:
    """How media inputs are downloaded (SSRF guard, size and time caps)."""
    media = settings.media
    return FetchPolicy(
        allow_http=media.allow_http,
        total_timeout_s=media.fetch_timeout_seconds,
        max_bytes=media.max_fetch_mb * 1024 * 1024,
        extra_allowed_networks=tuple(ip_network(n) for n in media.allowed_networks),
    )


def queue_timing(settings: Settings) -> queue.QueueTiming:
    jobs = settings.jobs
    return queue.QueueTiming(
        heartbeat_seconds=jobs.queue_heartbeat_seconds,
        stalled_seconds=jobs.queue_stalled_seconds,
        sweep_every_seconds=jobs.queue_sweep_seconds,
        poll_seconds=jobs.queue_poll_seconds,
    )


class Wiring:
    """Everything the edges call. `start()` opens the database, the blob store, the payment rails and the
    job dispatch; with static `offers` (tests of the public surface) only `paid` exists, which builds
    challenges and resolves nothing."""

    # Built by start() (absent with static offers).
    signer: UrlSigner
    blobs: BlobStore
    jobs: SqlJobStore
    refunds: RefundService
    registry: BackendRegistry
    uploads: UploadService
    media: MediaResolver
    runner: JobRunner
    dispatcher: Dispatcher
    webhooks: WebhookSender
    hooks: TerminalHooks
    lifecycle: JobLifecycle
    reconciler: Reconciler

    def __init__(
        self,
        settings: Settings,
        *,
        offers: Sequence[Offer] | None = None,
        catalog: Catalog = CATALOG,
        registry: BackendRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self._registry_override = registry
        self._static_offers = offers
        self.engine = PaymentEngine(offers or ())
        chain_ids = [o.chain_id for o in offers or ()] or [settings.devnet.chain_id]
        self.siwx = SiwxVerifier(settings.public_url, supported_chain_ids=chain_ids)
        self.events = JobEvents()
        self.unpaid_fetches = TokenBuckets(settings.media.unpaid_fetches_per_minute)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.db: Database | None = None
        self.devnet: Devnet | None = None
        self.tempo: TempoRail | None = None
        self.solana: SolanaRail | None = None
        self.scale_out = False  # PostgreSQL: jobs go through the procrastinate queue to worker processes
        self.paid = self._paid_requests(full=False)  # static offers keep this one
        self._closers: list[Closer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._wallets: dict[tuple[str, str], SettlerWallet] = {}
        self._rpcs: dict[int, AsyncRpc] = {}  # chain id -> RPC, for smart-wallet sign-ins

    @classmethod
    def with_offers(cls, settings: Settings, offers: Sequence[Offer]) -> Wiring:
        return cls(settings, offers=offers)

    @property
    def uploads_direct(self) -> bool:
        """Clients PUT uploads straight to the bucket (presigned) instead of through the app."""
        storage = self.settings.storage
        return storage.backend is StorageBackend.S3 and storage.s3 is not None and storage.s3.direct_uploads

    @property
    def credit_enabled(self) -> bool:
        return self.settings.payments.refund is RefundMethod.CREDIT

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._static_offers is not None:
            return
        secret = await self._open_stores()
        offers, methods, refunders = await self._open_rails()
        self.siwx = self._siwx(offers)
        self._build_refunds(refunders)
        self._build_media(secret)
        self._build_jobs()
        self._build_payments(offers, methods)
        self._build_services()
        await self._run()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for close in reversed(self._closers):
            try:
                await close()
            except Exception:  # keep closing the rest
                log.exception("error while stopping")
        self._closers.clear()

    def queue_worker(self, concurrency: int) -> QueueWorker:
        """The `studio402 worker` loop over this process's runner (scale-out only)."""
        if not self.scale_out or self.db is None:
            raise ConfigError(
                "`studio402 worker` needs a PostgreSQL database.url (the embedded default runs jobs itself)"
            )
        jobs = self.settings.jobs
        return QueueWorker(
            self.db,
            self.jobs,
            self.runner,
            owner=self.owner,
            lease_seconds=jobs.lease_seconds,
            concurrency=concurrency,
            timing=queue_timing(settings=self.settings),
        )

    @property
    def _db(self) -> Database:
        assert self.db is not None, "start() opens the database"
        return self.db

    # -- the parts, in the order start() builds them ------------------------------------------------------

    async def _open_stores(self) -> bytes:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secret = load_secret(settings.data_dir / "secret.key")
        self.signer = UrlSigner(secret, settings.public_url)
        self.blobs = open_blob_store(settings, self.signer)
        if isinstance(self.blobs, S3BlobStore):
            self._closers.append(self.blobs.aclose)
        database = settings.database
        self.db = await open_database(
            database_url(database.url, settings.data_dir),
            pool_size=database.pool_size,
            max_overflow=database.max_overflow,
        )
        self._closers.append(self.db.dispose)
        self.scale_out = self.db.url.startswith("postgresql")
        self.jobs = SqlJobStore(self.db)
        return secret

    async def _open_rails(self) -> tuple[list[Offer], list[PaymentMethod], Refunders]:
        """The x402 offers of PAYMENT-REQUIRED, every method that can pay, and the refunders."""
        evm_methods, refunders = await self._evm_rails()
        offers: list[Offer] = [m.offer for m in evm_methods]
        methods: list[PaymentMethod] = list(evm_methods)
        settings = self.settings
        if settings.devnet.enabled and settings.devnet.solana:  # x402 `exact` on the Solana devnet
            solana = await solana_devnet_rail(settings.data_dir, settings.payments.max_timeout_seconds)
            self.solana = solana
            self._closers.append(solana.close)
            offers.append(solana.method.offer)
            methods.append(solana.method)
            refunders[(solana.method.offer.network, solana.method.offer.asset.address)] = solana.refunds
        self.tempo = await build_tempo_rail(settings, self._closers)
        if self.tempo is not None:  # MPP: offered in WWW-Authenticate, paid with Authorization: Payment
            methods.append(self.tempo.method)
        return offers, methods, refunders

    def _siwx(self, offers: list[Offer]) -> SiwxVerifier:
        """Sign-ins from the wallets of every offered chain (smart wallets checked on their RPC)."""
        return SiwxVerifier(
            self.settings.public_url,
            supported_chain_ids=[o.chain_id for o in offers if o.network.startswith("eip155:")],
            solana_networks=[o.network for o in offers if o.network.startswith("solana:")],
            contract_checker=RpcEip1271Checker(self._rpcs),
        )

    def _build_refunds(self, refunders: Refunders) -> None:
        payments = self.settings.payments
        self.refunds = RefundService(
            payments.refund,
            SqlRefundStore(self._db),
            refunders,
            timeout=payments.settle_timeout_seconds,
            on_change=Republisher(self.jobs, self.events),
        )

    def _build_media(self, secret: bytes) -> None:
        settings = self.settings
        self.registry = self._registry_override or build_registry(settings, self.catalog)
        self._closers.append(self.registry.aclose)
        direct = self.blobs if isinstance(self.blobs, S3BlobStore) and self.uploads_direct else None
        self.uploads = UploadService(
            SqlUploadStore(self._db), self.blobs, secret, settings.public_url, direct=direct
        )
        media = settings.media
        self.media = MediaResolver(
            self.catalog,
            self.blobs,
            SafeFetcher(fetch_policy(settings)),
            settings.public_url,
            upload_confirmed=self.uploads.confirmed,
            limits=DecodeLimits(int(media.max_request_megapixels * 1e6), media.max_request_frames),
        )

    def _build_jobs(self) -> None:
        view = self._job_view()
        self.webhooks = WebhookSender(
            SqlWebhookStore(self._db), SafeFetcher(FetchPolicy(total_timeout_s=15.0)), view=view
        )
        self.hooks = TerminalHooks(self.jobs, self.refunds, self.webhooks)
        self.runner = self._runner()
        self.dispatcher = self._dispatcher()
        self.events.listen(self.dispatcher.on_event)
        self.lifecycle = JobLifecycle(self.jobs, self.events, self.hooks, self.dispatcher, view)

    def _job_view(self) -> JobView:
        """The public shape of a job, its result URLs signed afresh."""
        ttl = self.settings.storage.url_ttl_seconds
        return functools.partial(job_view, blobs=self.blobs, catalog=self.catalog, ttl=ttl)

    def _runner(self) -> JobRunner:
        settings = self.settings
        loader = BlobMediaLoader(self.catalog, self.blobs, self.media, settings.storage.url_ttl_seconds)
        return JobRunner(
            self.jobs,
            self.registry,
            self.blobs,
            self.events,
            self.catalog,
            owner=self.owner,
            on_terminal=self.hooks.on_terminal,
            media=loader,
            config=RunnerConfig(lease_seconds=settings.jobs.lease_seconds),
        )

    def _dispatcher(self) -> Dispatcher:
        """The seam of job dispatch: the queue on PostgreSQL, else the in-process pool."""
        if self.scale_out:
            return QueueDispatcher(self._db)
        jobs = self.settings.jobs
        return WorkerPool(
            self.jobs, self.runner, workers=jobs.workers, owner=self.owner, lease_seconds=jobs.lease_seconds
        )

    def _build_payments(self, offers: list[Offer], methods: list[PaymentMethod]) -> None:
        dispatcher = self.dispatcher
        self.engine = PaymentEngine(
            offers,
            methods,
            SqlLedgerStore(self._db, on_runnable=dispatcher.on_runnable),
            settle_timeout=self.settings.payments.settle_timeout_seconds,
            job_ready=_job_ready(dispatcher),
            extensions_for=ChallengeExtensions(self.siwx, credit=self.credit_enabled),
            issuers=[self.tempo.issuer] if self.tempo is not None else [],
        )

    def _build_services(self) -> None:
        self.paid = self._paid_requests(full=True)
        self.reconciler = Reconciler(self.engine, self.refunds, self.hooks, self.blobs, self.settings.storage)

    def _paid_requests(self, *, full: bool) -> PaidRequests:
        """Static offers: no media to resolve, no backend to ask."""
        config = self._paid_config()
        if not full:
            return PaidRequests(self.catalog, self.engine, self.siwx, self.unpaid_fetches, config)
        return PaidRequests(
            self.catalog,
            self.engine,
            self.siwx,
            self.unpaid_fetches,
            config,
            media=self.media,
            registry=self.registry,
            mpp=self.tempo.method if self.tempo is not None else None,
            uploads=self.uploads,
        )

    def _paid_config(self) -> PaidRequestConfig:
        settings = self.settings
        return PaidRequestConfig(settings.public_url, settings.pricing.markup_bps, credit=self.credit_enabled)

    async def _run(self) -> None:
        await self.reconciler.reconcile()
        await self.dispatcher.start()
        self._tasks.append(asyncio.create_task(self.webhooks.run_forever(), name="webhooks"))
        self._closers.append(self.dispatcher.stop)
        every = self.settings.payments.reconcile_every_seconds
        self._tasks.append(asyncio.create_task(self.reconciler.run_forever(every), name="reconciler"))

    # -- payment rails ---------------------------------------------------------------------------------------

    def _wallet(self, rpc: AsyncRpc, url: str, key: str) -> SettlerWallet:
        """One wallet (one nonce manager) per key and RPC, shared by settlements and refunds."""
        wallet = self._wallets.get((url, key))
        if wallet is None:
            wallet = self._wallets[(url, key)] = SettlerWallet(rpc, key)
        return wallet

    async def _evm_rails(self) -> tuple[list[EvmExactMethod], Refunders]:
        settings = self.settings
        if settings.payments.networks:
            rails = [await self._network_rail(n) for n in settings.payments.networks]
        elif settings.devnet.enabled:
            rails = [await self._devnet_rail()]
        else:
            raise ConfigError("no payment network configured and the devnet is disabled")
        methods = [method for method, _ in rails]
        refunders = {(m.offer.network, m.offer.asset.address): r for m, r in rails if r is not None}
        if settings.payments.refund is RefundMethod.ONCHAIN and len(refunders) < len(methods):
            raise ConfigError('refund = "onchain" needs a refund_key on every payment network')
        return methods, refunders

    async def _devnet_rail(self) -> tuple[EvmExactMethod, RefundSender | None]:
        self.devnet = devnet_for(self.settings)
        info = await self.devnet.start()
        self._closers.append(self.devnet.stop)
        rpc = self._rpcs[info.chain_id] = self.devnet.rpc
        offer = Offer(
            Asset(info.network, info.token, info.decimals, info.token_name, info.token_version),
            info.pay_to,
            self.settings.payments.max_timeout_seconds,
        )
        settler = EvmSettler(rpc, self._wallet(rpc, info.rpc_url, info.settler_key), token=info.token)
        refunder = EvmRefunder(rpc, self._wallet(rpc, info.rpc_url, info.refund_key), token=info.token)
        return EvmExactMethod(offer, settler), refunder

    async def _network_rail(self, net: NetworkSettings) -> tuple[EvmExactMethod, RefundSender | None]:
        offer = Offer(
            Asset(net.network, net.asset, net.decimals, net.asset_name, net.asset_version),
            net.pay_to,
            self.settings.payments.max_timeout_seconds,
        )
        if net.rpc_url is None or (net.settler_key is None and net.facilitator_url is None):
            raise ConfigError(f"network {net.network}: needs rpc_url, and settler_key or facilitator_url")
        rpc = AsyncRpc(net.rpc_url)
        self._closers.append(rpc.aclose)
        chain_id = await rpc.chain_id()
        if chain_id != offer.chain_id:
            raise ConfigError(f"rpc_url of {net.network} serves chain {chain_id}")
        self._rpcs[chain_id] = rpc
        refunder = None
        if net.refund_key is not None:
            wallet = self._wallet(rpc, net.rpc_url, net.refund_key.get_secret_value())
            refunder = EvmRefunder(rpc, wallet, token=net.asset)
        return EvmExactMethod(offer, self._settler(net, net.rpc_url, rpc)), refunder

    def _settler(self, net: NetworkSettings, url: str, rpc: AsyncRpc) -> EvmSettlement:
        if net.facilitator_url is not None:  # a remote facilitator broadcasts; our RPC only reads
            remote = FacilitatorSettlement(net.facilitator_url, rpc, token=net.asset)
            self._closers.append(remote.aclose)
            return remote
        assert net.settler_key is not None
        return EvmSettler(rpc, self._wallet(rpc, url, net.settler_key.get_secret_value()), token=net.asset)


def _job_ready(dispatcher: Dispatcher) -> Callable[[str], Awaitable[None]]:
    """The payment engine's hook once a paid job is runnable (committed): wake its dispatcher."""

    async def job_ready(job_id: str) -> None:
        dispatcher.wake(job_id)

    return job_ready
