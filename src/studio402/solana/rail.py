"""The Solana payment rail of a data dir's devnet, assembled: what the app plugs into the engine when
`[devnet] solana` is on (the devnet server is started or reused; its keys are read from the data dir)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio402.chain.rpc import AsyncRpc
from studio402.payments.methods.svm_exact import SvmExactMethod, svm_offer
from studio402.solana import process
from studio402.solana.devnet import DECIMALS, NETWORK, devnet_keys
from studio402.solana.refunds import SvmRefundSender
from studio402.solana.settlement import SvmSettler


@dataclass(frozen=True, slots=True)
class SolanaRail:
    method: SvmExactMethod
    refunds: SvmRefundSender
    rpc: AsyncRpc  # close with `await rail.rpc.aclose()` at shutdown
    started: bool = False  # this call started the devnet server: stop it at shutdown (`close()`)
    data_dir: Path | None = None

    async def close(self) -> None:
        await self.rpc.aclose()
        if self.started and self.data_dir is not None:
            await process.stop(self.data_dir)


async def devnet_rail(data_dir: Path, max_timeout_seconds: int) -> SolanaRail:
    url, started = await process.ensure_running(data_dir)
    fee_payer, pay_to, mint = devnet_keys(data_dir)
    rpc = AsyncRpc(url)
    offer = svm_offer(
        NETWORK,
        str(mint.pubkey()),
        DECIMALS,
        str(pay_to.pubkey()),
        str(fee_payer.pubkey()),
        max_timeout_seconds,
    )
    method = SvmExactMethod(offer, fee_payer, SvmSettler(rpc))
    refunds = SvmRefundSender(rpc, fee_payer, pay_to, mint.pubkey(), DECIMALS)
    return SolanaRail(method, refunds, rpc, started, data_dir)
