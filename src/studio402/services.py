"""The composition root: builds every service from the settings, once, and owns their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from x402.extensions.payment_identifier import PAYMENT_IDENTIFIER, declare_payment_identifier_extension

from studio402.api.ratelimit import TokenBuckets
from studio402.auth.siwx import SIWX_EXTENSION_KEY, SiwxVerifier
from studio402.backends.base import Ask, Backend
from studio402.backends.factory import build_backend
from studio402.backends.preview.backend import PreviewBackend
from studio402.backends.registry import BackendRegistry
from studio402.catalog import CATALOG, Catalog, Route, ValidatedRequest
from studio402.chain.devnet import Devnet, devnet_for
from studio402.chain.eip1271 import RpcEip1271Checker
from studio402.chain.facilitator import FacilitatorSettlement
from studio402.chain.refunds import EvmRefunder
from studio402.chain.rpc import AsyncRpc
from studio402.chain.settlement import EvmSettler
from studio402.chain.wallet import SettlerWallet
from studio402.config import NetworkSettings, RefundMethod, Settings, StorageBackend
from studio402.db.engine import Database, database_url, open_database
from studio402.db.ledger_store import SqlLedgerStore, no_hook
from studio402.db.refund_store import SqlRefundStore
from studio402.errors import ConfigError, NotServable
from studio402.jobs import queue
from studio402.jobs.events import JobEvents
from studio402.jobs.model import Job, is_refundable
from studio402.jobs.queue_worker import QueueWorker
from studio402.jobs.runner import JobRunner, RunnerConfig
from studio402.db.job_store import SqlJobStore
from studio402.jobs.view import job_view
from studio402.jobs.webhooks import WebhookSender
from studio402.jobs.worker import WorkerPool
from studio402.media.budget import DecodeLimits
from studio402.media.fetch import FetchPolicy, SafeFetcher
from studio402.media.resolver import BlobMediaLoader, MediaResolver
from studio402.media.store import UNPAID
from studio402.money import Asset
from studio402.payments import x402
from studio402.payments.engine import PaymentEngine
from studio402.payments.interfaces import PaymentMethod
from studio402.payments.methods.evm_exact import EvmExactMethod, EvmSettlement
from studio402.payments.offers import Offer
from studio402.payments.refunds import RefundRequest, RefundSender, RefundService
from studio402.solana.rail import SolanaRail
from studio402.solana.rail import devnet_rail as solana_devnet_rail
from studio402.storage import open_blob_store
from studio402.storage.base import UrlSigner
from studio402.storage.s3 import S3BlobStore
from studio402.storage.uploads import INCOMING, UploadService
from studio402.tempo_rail import TempoRail, build_tempo_rail

log = logging.getLogger(__name__)
RECONCILE_EVERY_SECONDS = 15.0
SWEEP_EVERY_SECONDS = 3600.0
INCOMING_RETENTION_DAYS = 1.0  # unconfirmed direct uploads (their presigned PUT lives an hour)


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


class Services:
    """Everything the routes call. `start()` opens the database, the blob store, the payment rails and the
    workers; with static `offers` (tests of the public surface) it only builds challenges."""

    def __init__(
        self,
        settings: Settings,
        *,
        offers: Sequence[Offer] | None = None,
        catalog: Catalog = CATALOG,
        registry: BackendRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._registry_override = registry
        self.catalog = catalog
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
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._wallets: dict[tuple[str, str], SettlerWallet] = {}
        self._rpcs: dict[int, AsyncRpc] = {}  # chain id -> RPC, for smart-wallet sign-ins
        self.scale_out = False

    @classmethod
    def with_offers(cls, settings: Settings, offers: Sequence[Offer]) -> Services:
        return cls(settings, offers=offers)

    @property
    def uploads_direct(self) -> bool:
        """Clients PUT uploads straight to the bucket (presigned) instead of through the app."""
        storage = self.settings.storage
        return storage.backend is StorageBackend.S3 and storage.s3 is not None and storage.s3.direct_uploads

    @property
    def credit_enabled(self) -> bool:
        return self.settings.payments.refund is RefundMethod.CREDIT

    def resource(self, route: Route) -> x402.Resource:
        """The paid resource as clients see it: from the configured public URL, never the Host header."""
        return x402.Resource(url=self.settings.public_url + route.path, description=route.title)

    def public_url_for(self, path: str, query: str = "") -> str:
        return self.settings.public_url + path + (f"?{query}" if query else "")

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._static_offers is not None:
            return
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secret = load_secret(settings.data_dir / "secret.key")
        self.signer = UrlSigner(secret, settings.public_url)
        self.blobs = open_blob_store(settings, self.signer)
        if isinstance(self.blobs, S3BlobStore):
            self._closers.append(self.blobs.aclose)
        self.db = await open_database(database_url(settings.database.url, settings.data_dir))
        self._closers.append(self.db.dispose)
        # PostgreSQL: jobs go through the procrastinate queue to `studio402 worker` processes.
        self.scale_out = self.db.url.startswith("postgresql")
        self.jobs = SqlJobStore(self.db)
        evm_methods, refunders = await self._payment_rails()
        offers: list[Offer] = [m.offer for m in evm_methods]  # the x402 offers of PAYMENT-REQUIRED
        methods: list[PaymentMethod] = list(evm_methods)
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
        self.siwx = SiwxVerifier(
            settings.public_url,
            supported_chain_ids=[o.chain_id for o in offers if o.network.startswith("eip155:")],
            solana_networks=[o.network for o in offers if o.network.startswith("solana:")],
            contract_checker=RpcEip1271Checker(self._rpcs),
        )
        self.refunds = RefundService(
            settings.payments.refund,
            SqlRefundStore(self.db),
            refunders,
            timeout=settings.payments.settle_timeout_seconds,
            on_change=self._republish,
        )
        self.registry = self._registry_override or build_registry(settings, self.catalog)
        self._closers.append(self.registry.aclose)
        media = settings.media
        fetch_policy = FetchPolicy(
            allow_http=media.allow_http,
            total_timeout_s=media.fetch_timeout_seconds,
            max_bytes=media.max_fetch_mb * 1024 * 1024,
            extra_allowed_networks=tuple(ip_network(n) for n in media.allowed_networks),
        )
        direct = self.blobs if isinstance(self.blobs, S3BlobStore) and self.uploads_direct else None
        self.uploads = UploadService(self.db, self.blobs, secret, settings.public_url, direct=direct)
        self.media = MediaResolver(
            self.catalog,
            self.blobs,
            SafeFetcher(fetch_policy),
            settings.public_url,
            upload_confirmed=self.uploads.confirmed,
            limits=DecodeLimits(int(media.max_request_megapixels * 1e6), media.max_request_frames),
        )
        loader = BlobMediaLoader(self.catalog, self.blobs, self.media, settings.storage.url_ttl_seconds)
        runner = JobRunner(
            self.jobs,
            self.registry,
            self.blobs,
            self.events,
            self.catalog,
            owner=self.owner,
            on_terminal=self._on_terminal,
            media=loader,
            config=RunnerConfig(lease_seconds=settings.jobs.lease_seconds),
        )
        self.runner = runner
        self.pool = WorkerPool(
            self.jobs,
            runner,
            workers=0 if self.scale_out else settings.jobs.workers,
            owner=self.owner,
            lease_seconds=settings.jobs.lease_seconds,
        )
        self.events.listen(self.pool.on_event)
        self.engine = PaymentEngine(
            offers,
            methods,
            SqlLedgerStore(self.db, on_runnable=queue.enqueue_in if self.scale_out else no_hook),
            settle_timeout=settings.payments.settle_timeout_seconds,
            job_ready=self._job_ready,
            extensions_for=self._challenge_extensions,
            issuers=[self.tempo.issuer] if self.tempo is not None else [],
        )
        self.webhooks = WebhookSender(
            self.db,
            SafeFetcher(FetchPolicy(total_timeout_s=15.0)),
            view=self.job_view,
        )
        await self.reconcile()
        await self.pool.start()
        self._tasks.append(asyncio.create_task(self.webhooks.run_forever(), name="webhooks"))
        self._closers.append(self.pool.stop)
        self._tasks.append(asyncio.create_task(self._reconcile_forever(), name="reconciler"))

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

    async def reconcile(self) -> list[str]:
        """Finish what a crash or a flaky RPC interrupted: settlements, refunds never started, refunds in
        flight. Each step runs whatever the others did (a failing one is logged and retried next pass);
        returns the names of the steps that failed."""
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("payments", self.engine.reconcile),
            ("refunds to start", self._start_missing_refunds),
            ("refunds in flight", self.refunds.reconcile),
        ]
        failed = []
        for name, step in steps:
            try:
                await step()
            except Exception:  # a flaky RPC or disk must not stop the other steps
                log.exception("reconciling %s failed; will retry", name)
                failed.append(name)
        return failed

    async def _start_missing_refunds(self) -> None:
        for job in await self.jobs.needing_refund():
            await self._refund(job)

    async def _reconcile_forever(self) -> None:
        last_sweep = 0.0
        while True:
            await asyncio.sleep(RECONCILE_EVERY_SECONDS)
            await self.reconcile()
            if self.clock() - last_sweep > SWEEP_EVERY_SECONDS:
                last_sweep = self.clock()
                try:
                    await self.sweep_storage()
                except Exception:  # a full disk or a bucket outage must not kill the loop
                    log.exception("storage sweep failed; will retry")

    async def sweep_storage(self) -> dict[str, int]:
        """Delete stored files past their retention (docs/storage.md)."""
        storage = self.settings.storage
        removed = {}
        for area, days in (
            ("results", storage.result_retention_days),
            ("uploads", storage.upload_retention_days),
            ("media", storage.media_retention_days),
            (UNPAID, storage.unpaid_media_retention_hours / 24),
            (INCOMING, INCOMING_RETENTION_DAYS),
        ):
            if days > 0:
                removed[area] = await self.blobs.sweep(area, self.clock() - days * 86_400)
        return removed

    def media_fetches(self, request: ValidatedRequest) -> int:
        """Downloads resolving `request` would start now (none in static mode, which resolves nothing)."""
        return 0 if self._static_offers is not None else self.media.fetches_for(request)

    def check_servable(self, request: ValidatedRequest) -> None:
        """400 before any price when no backend of the route's chain can serve this request (it would be
        paid for, then fail upstream and cost a refund)."""
        if self._static_offers is not None:
            return
        reason = self.registry.refusal(
            Ask(request.route.model, request.route.operation, request.canonical, request.inputs)
        )
        if reason is not None:
            raise NotServable(reason)

    async def resolve_media(self, request: ValidatedRequest) -> ValidatedRequest:
        """Fetch and verify the media inputs (before any price is quoted); static mode skips it."""
        if self._static_offers is not None:
            return request
        return await self.media.resolve(request)

    @staticmethod
    def clock() -> float:
        return time.time()

    async def cancel_job(self, job: Job) -> Job | None:
        """Cancel a job that has not ended; refunded when it had not started. None if it cannot be."""
        canceled = await self.jobs.cancel(job.id, self.clock())
        if canceled is None:
            return None
        self.events.publish(canceled)  # a worker running it stops and cancels it upstream
        if self.scale_out:  # ... in a worker process: through the queue's abort
            await self.jobs.db.write(lambda conn: queue.abort_in(conn, job.id))
        await self._on_terminal(canceled)
        return await self.jobs.get(job.id) or canceled

    def queue_worker(self, concurrency: int) -> QueueWorker:
        """The `studio402 worker` loop over this process's runner (scale-out only)."""
        if not self.scale_out or self.db is None:
            raise ConfigError(
                "`studio402 worker` needs a PostgreSQL database.url (the embedded default runs jobs itself)"
            )
        jobs = self.settings.jobs
        timing = queue.QueueTiming(
            heartbeat_seconds=jobs.queue_heartbeat_seconds,
            stalled_seconds=jobs.queue_stalled_seconds,
            sweep_every_seconds=jobs.queue_sweep_seconds,
            poll_seconds=jobs.queue_poll_seconds,
        )
        return QueueWorker(
            self.db,
            self.jobs,
            self.runner,
            owner=self.owner,
            lease_seconds=jobs.lease_seconds,
            concurrency=concurrency,
            timing=timing,
        )

    # -- job hooks -------------------------------------------------------------------------------------------

    async def _job_ready(self, job_id: str) -> None:
        self.pool.wake()

    async def _on_terminal(self, job: Job) -> None:
        if is_refundable(job):
            await self._refund(job)
        if job.callback_url:
            await self.webhooks.enqueue(await self.jobs.get(job.id) or job)

    def job_view(self, job: Job) -> dict[str, Any]:
        return job_view(
            job, blobs=self.blobs, catalog=self.catalog, ttl=self.settings.storage.url_ttl_seconds
        )

    async def _refund(self, job: Job) -> None:
        if job.payment_id is None:
            return
        try:
            await self.refunds.refund(RefundRequest(job.id, job.payment_id, job.payer, job.micros))
        except Exception:  # the reconciler retries from needing_refund()
            log.exception("refund of job %s failed; will retry", job.id)

    async def _republish(self, job_id: str) -> None:
        job = await self.jobs.get(job_id)
        if job is not None:
            self.events.publish(job)

    # -- payment rails ---------------------------------------------------------------------------------------

    def _wallet(self, rpc: AsyncRpc, url: str, key: str) -> SettlerWallet:
        """One wallet (one nonce manager) per key and RPC, shared by settlements and refunds."""
        wallet = self._wallets.get((url, key))
        if wallet is None:
            wallet = self._wallets[(url, key)] = SettlerWallet(rpc, key)
        return wallet

    async def _payment_rails(self) -> tuple[list[EvmExactMethod], dict[tuple[str, str], RefundSender]]:
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
        settings = self.settings
        self.devnet = devnet_for(settings)
        info = await self.devnet.start()
        self._closers.append(self.devnet.stop)
        self._rpcs[info.chain_id] = self.devnet.rpc
        offer = Offer(
            Asset(info.network, info.token, info.decimals, info.token_name, info.token_version),
            info.pay_to,
            settings.payments.max_timeout_seconds,
        )
        rpc = self.devnet.rpc
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
        settler: EvmSettlement
        if net.facilitator_url is not None:  # a remote facilitator broadcasts; our RPC only reads
            remote = FacilitatorSettlement(net.facilitator_url, rpc, token=net.asset)
            self._closers.append(remote.aclose)
            settler = remote
        else:
            assert net.settler_key is not None
            key = net.settler_key.get_secret_value()
            settler = EvmSettler(rpc, self._wallet(rpc, net.rpc_url, key), token=net.asset)
        refunder = None
        if net.refund_key is not None:
            wallet = self._wallet(rpc, net.rpc_url, net.refund_key.get_secret_value())
            refunder = EvmRefunder(rpc, wallet, token=net.asset)
        return EvmExactMethod(offer, settler), refunder

    def _challenge_extensions(self, resource_url: str) -> Mapping[str, Any]:
        extensions: dict[str, Any] = {
            PAYMENT_IDENTIFIER: declare_payment_identifier_extension(required=False)
        }
        if self.credit_enabled:
            # Holders of refund credit sign in instead of paying (the official clients try this first).
            extensions[SIWX_EXTENSION_KEY] = self.siwx.challenge_extension(
                resource_url, statement="Sign in to spend your studio402 credit"
            )
        return extensions
