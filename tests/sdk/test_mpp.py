"""The SDK pays MPP `charge` on Tempo (the official pympp client) when its wallet has a Tempo rail, within
its spend limits, and polls the job with the same key's sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from studio402.chain.devnet import Devnet
from studio402.chain.tempo_devnet import PATH_USD
from studio402.sdk import AsyncStudio, JobStatus, Price, SpendLimitExceeded, SpendLimits, TempoRail, Wallet
from tests.devnet_fixture import new_payer
from tests.paid_support import running_server, transfers_from


async def test_pays_with_mpp_on_tempo(devnet: Devnet, tmp_path: Path) -> None:
    async with running_server(devnet, tmp_path / "d", overrides={"devnet.tempo": True}) as server:
        rail = server.wiring.tempo
        assert rail is not None and rail.devnet is not None
        tempo = rail.devnet
        payer = await new_payer(devnet, 1_000_000)  # also holds x402 money: networks= picks Tempo
        await tempo.fund(payer.address, 1_000_000)
        before = await tempo.balance_of(tempo.info.recipient)
        wallet = Wallet(payer.key, tempo=TempoRail(tempo.info.rpc_url, (PATH_USD,)))
        body = {"prompt": "a paper boat"}
        capped = SpendLimits(per_call=Price(1_000))
        async with AsyncStudio(server.base, wallet, networks=("tempo",), limits=capped) as studio:
            with pytest.raises(SpendLimitExceeded):
                await studio.generate("nano-banana", "generate", body, out_dir=tmp_path)
        assert await tempo.balance_of(tempo.info.recipient) == before
        async with AsyncStudio(server.base, wallet, networks=("tempo",)) as studio:
            done = await studio.generate("nano-banana", "generate", body, out_dir=tmp_path)
        after = await tempo.balance_of(tempo.info.recipient)
    assert done.status is JobStatus.COMPLETE and Image.open(done.files[0]).width > 0
    assert after - before == done.price.micros > 0
    assert done.payment is not None and done.payment["network"] == "tempo"
    assert await transfers_from(devnet, payer.address) == []  # nothing paid with x402
