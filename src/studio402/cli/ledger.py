"""`studio402 ledger audit`: does the ledger balance, and does the chain agree?"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import typer
from eth_account import Account

from studio402.chain.audit import RpcAuditChain
from studio402.chain.devnet import Devnet, devnet_for
from studio402.chain.rpc import AsyncRpc
from studio402.chain.tempo_devnet import read_tempo_info
from studio402.cli.common import ConfigOpt, DataDirOpt, fail, print_json, settings_from
from studio402.config import Settings
from studio402.db import audit_source
from studio402.db.engine import database_url, open_database
from studio402.errors import Studio402Error
from studio402.payments.audit import AuditChain, AuditReport, audit
from studio402.solana import process as solana_process
from studio402.solana.audit import SvmAuditChain
from studio402.solana.devnet import NETWORK as SOLANA_NETWORK
from studio402.solana.devnet import devnet_keys

app = typer.Typer(no_args_is_help=True, help="The payment ledger.")


@contextlib.asynccontextmanager
async def _chains(settings: Settings) -> AsyncIterator[tuple[dict[str, AuditChain], dict[str, str]]]:
    """An audit view of every payment network, and the refund wallet address of each."""
    if not settings.payments.networks:
        devnet: Devnet = devnet_for(settings)
        info = await devnet.start()
        try:
            yield (
                {info.network: RpcAuditChain(devnet.rpc, info.token)},
                {info.network: Account.from_key(info.refund_key).address},
            )
        finally:
            await devnet.stop()
        return
    rpcs = [(n, AsyncRpc(n.rpc_url)) for n in settings.payments.networks if n.rpc_url]
    try:
        chains: dict[str, AuditChain] = {}
        wallets: dict[str, str] = {}
        for net, rpc in rpcs:
            chains[net.network] = RpcAuditChain(rpc, net.asset)
            if net.refund_key is not None:
                wallets[net.network] = Account.from_key(net.refund_key.get_secret_value()).address
        yield chains, wallets
    finally:
        for _, rpc in rpcs:
            await rpc.aclose()


async def run_audit(settings: Settings) -> AuditReport:
    db = await open_database(database_url(settings.database.url, settings.data_dir))
    try:
        payments, statuses, refunds = await audit_source.load(db)
    finally:
        await db.dispose()
    async with (
        _chains(settings) as (chains, wallets),
        _tempo_chain(settings) as tempo,
        _solana_chain(settings) as (solana, solana_wallets),
    ):
        return await audit(
            payments, statuses, refunds, {**chains, **tempo, **solana}, {**wallets, **solana_wallets}
        )


@contextlib.asynccontextmanager
async def _solana_chain(settings: Settings) -> AsyncIterator[tuple[dict[str, AuditChain], dict[str, str]]]:
    """x402 exact on the Solana devnet, if on: its server is reused (or started, and stopped after), since
    its state lives in the data dir. Refunds leave from payTo's token account: payTo is the refund wallet."""
    if not (settings.devnet.enabled and settings.devnet.solana):
        yield {}, {}
        return
    url, started = await solana_process.ensure_running(settings.data_dir)
    _fee_payer, pay_to, mint = devnet_keys(settings.data_dir)
    rpc = AsyncRpc(url)
    try:
        yield {SOLANA_NETWORK: SvmAuditChain(rpc, str(mint.pubkey()))}, {SOLANA_NETWORK: str(pay_to.pubkey())}
    finally:
        await rpc.aclose()
        if started:
            await solana_process.stop(settings.data_dir)


@contextlib.asynccontextmanager
async def _tempo_chain(settings: Settings) -> AsyncIterator[dict[str, AuditChain]]:
    """The MPP rail on Tempo, if configured: its transfers are plain TIP-20 Transfer logs."""
    tempo = settings.payments.tempo
    if tempo is not None:
        url, chain_id, currency = tempo.rpc_url, tempo.chain_id, tempo.currency
    elif settings.devnet.enabled and settings.devnet.tempo:
        info = await read_tempo_info(settings.data_dir)
        if info is None:  # not running: nothing to check it against (the audit says so per payment)
            yield {}
            return
        url, chain_id, currency = info.rpc_url, info.chain_id, info.currency
    else:
        yield {}
        return
    rpc = AsyncRpc(url)
    try:
        yield {f"tempo:{chain_id}": RpcAuditChain(rpc, currency)}
    finally:
        await rpc.aclose()


def report_json(report: AuditReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "networks": {k: {**vars(t), "balanced": t.balanced} for k, t in report.totals.items()},
        "creditSpentMicros": report.credit_spent_micros,
        "creditRefundedMicros": report.credit_refunded_micros,
        "problems": report.problems,
    }


@app.command("audit")
def audit_command(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """settled = delivered + refunded + in flight (+ retained), checked against the chain; exit 1 if not."""
    try:
        report = asyncio.run(run_audit(settings_from(config, data_dir)))
    except Studio402Error as exc:
        fail(exc)
    print_json(report_json(report))
    if not report.ok:
        raise typer.Exit(1)
