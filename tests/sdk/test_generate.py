"""The SDK against a real studio402 on the devnet: real x402 payments, real SIGN-IN-WITH-X, real files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image

from studio402.sdk import (
    AsyncStudio,
    JobStatus,
    Price,
    ServerError,
    SpendLimitExceeded,
    SpendLimits,
    Studio,
    Wallet,
    new_payment_id,
)
from tests.devnet_fixture import new_payer
from tests.paid_support import PaidServer, transfers_from

IMAGE = ("nano-banana", "generate", {"prompt": "a lighthouse on a cliff", "aspectRatio": "16:9"})


class Counting(httpx.AsyncBaseTransport):
    """Counts the requests by path (and by SIGN-IN-WITH-X header) on their way to the server."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []
        self.signins: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if "sign-in-with-x" in request.headers:
            self.signins.add(request.headers["sign-in-with-x"])
        return await self.inner.handle_async_request(request)


async def test_models_and_quote(studio_server: PaidServer) -> None:
    async with AsyncStudio(studio_server.base) as studio:
        routes = await studio.models()
        assert len(routes) == 25
        veo = next(r for r in routes if (r.model, r.operation) == ("veo-3.1-fast", "generate"))
        assert veo.kind == "video" and veo.min_usd is not None
        quote = await studio.quote(*IMAGE)
        assert quote.price.micros > 0 and quote.request["aspectRatio"] == "16:9"
        with pytest.raises(ServerError) as bad:
            await studio.quote("nano-banana", "generate", {})
        assert bad.value.code == "validation_failed" and bad.value.status == 400


async def test_generates_an_image_end_to_end(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 2_000_000)
    counting = Counting()
    async with AsyncStudio(studio_server.base, Wallet(payer.key), transport=counting) as studio:
        quote = await studio.quote(*IMAGE)
        done = await studio.generate(*IMAGE, out_dir=tmp_path)
        assert studio.signins is not None
    assert done.status is JobStatus.COMPLETE and done.price == quote.price
    assert done.payment is not None and done.payment["success"] is True
    (path,) = done.files
    image = Image.open(path)
    assert image.size[0] > image.size[1]  # 16:9
    assert path.name.startswith(done.job_id)
    sent = await transfers_from(studio_server.devnet, payer.address)
    assert [(to.lower(), value) for to, value, _ in sent] == [
        (studio_server.devnet.info.pay_to.lower(), quote.price.micros)
    ]
    polls = [p for p in counting.paths if p == f"/api/jobs/{done.job_id}"]
    assert len(polls) >= 3  # the 402 challenge, then at least two polls ...
    assert len(counting.signins) == 1 and studio.signins.signed == 1  # ... with one signed header


async def test_generates_a_video_end_to_end(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 5_000_000)
    body = {"prompt": "waves at night", "durationSeconds": "4", "resolution": "720p"}
    async with AsyncStudio(studio_server.base, Wallet(payer.key)) as studio:
        done = await studio.generate("veo-3.1-fast", "generate", body, out_dir=tmp_path)
    assert set(done.urls) == {"video", "thumbnail"}
    video = next(p for p in done.files if p.suffix == ".mp4")
    with av.open(str(video)) as container:
        assert isinstance(container, av.container.InputContainer)
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 96  # 4 s at 24 fps
    thumbnail = next(p for p in done.files if p != video)
    assert Image.open(thumbnail).width > 0


async def test_spend_limits_refuse_before_paying(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 2_000_000)
    wallet = Wallet(payer.key)
    async with AsyncStudio(studio_server.base, wallet, limits=SpendLimits(per_call=Price(1000))) as studio:
        with pytest.raises(SpendLimitExceeded) as refused:
            await studio.generate(*IMAGE, out_dir=tmp_path)
        assert refused.value.code == "spend_limit_exceeded"
    async with AsyncStudio(studio_server.base, wallet) as studio:
        price = (await studio.quote(*IMAGE)).price
    session = SpendLimits(per_session=Price(price.micros * 3 // 2))
    async with AsyncStudio(studio_server.base, wallet, limits=session) as studio:
        first = await studio.generate(*IMAGE, wait=False)
        with pytest.raises(SpendLimitExceeded):
            await studio.generate(*IMAGE, wait=False)
        assert studio.spending.spent == price.micros
    sent = await transfers_from(studio_server.devnet, payer.address)
    assert len(sent) == 1 and first.job_id


async def test_invalid_input_raises_the_problem_code_and_pays_nothing(studio_server: PaidServer) -> None:
    payer = await new_payer(studio_server.devnet, 1_000_000)
    async with AsyncStudio(studio_server.base, Wallet(payer.key)) as studio:
        with pytest.raises(ServerError) as bad:
            await studio.generate("nano-banana", "generate", {"prompt": "x", "aspectRatio": "7:3"})
        assert bad.value.code == "validation_failed"
        with pytest.raises(ServerError) as unknown:
            await studio.generate("no-such-model", "generate", {"prompt": "x"})
        assert unknown.value.status == 404
        assert studio.spending.spent == 0
    assert await transfers_from(studio_server.devnet, payer.address) == []


class DropsPaidAnswer(httpx.AsyncBaseTransport):
    """The paid POST reaches the server and is answered, then the connection 'drops' (once)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.dropped = 0
        self.paid_posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and "payment-signature" in request.headers:
            self.paid_posts += 1
            await response.aread()
            assert response.status_code == 200  # the server settled and created the job
            if not self.dropped:
                self.dropped += 1
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


async def test_a_lost_answer_is_retried_without_paying_twice(studio_server: PaidServer) -> None:
    payer = await new_payer(studio_server.devnet, 1_000_000)
    dropping = DropsPaidAnswer()
    async with AsyncStudio(studio_server.base, Wallet(payer.key), transport=dropping) as studio:
        done = await studio.generate(*IMAGE, wait=False)
        assert studio.spending.spent == done.price.micros
        jobs = await studio.jobs()
    assert dropping.dropped == 1 and dropping.paid_posts == 2
    assert [j.job_id for j in jobs] == [done.job_id]  # the retry got the job the first POST created
    assert len(await transfers_from(studio_server.devnet, payer.address)) == 1


async def test_the_same_payment_id_never_pays_twice(studio_server: PaidServer) -> None:
    """Another process retrying the call (a fresh signature, the same payment id) gets the same job."""
    payer = await new_payer(studio_server.devnet, 1_000_000)
    payment_id = new_payment_id()
    async with AsyncStudio(studio_server.base, Wallet(payer.key)) as studio:
        first = await studio.generate(*IMAGE, wait=False, payment_id=payment_id)
    async with AsyncStudio(studio_server.base, Wallet(payer.key)) as studio:
        again = await studio.generate(*IMAGE, wait=False, payment_id=payment_id)
        other = await studio.generate(*IMAGE, wait=False)
    assert again.job_id == first.job_id and other.job_id != first.job_id
    assert len(await transfers_from(studio_server.devnet, payer.address)) == 2


async def test_sync_client_and_paid_upload(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 3_000_000)
    source = tmp_path / "in.png"
    Image.new("RGB", (256, 256), (200, 40, 40)).save(source)
    body = {"prompt": "make it blue"}

    def run() -> list[Path]:
        with Studio(studio_server.base, Wallet(payer.key)) as studio:
            done = studio.generate("nano-banana", "edit", body, files={"images": [source]}, out_dir=tmp_path)
            assert done.status is JobStatus.COMPLETE
            return done.files

    files = await asyncio.to_thread(run)
    assert Image.open(files[0]).width > 0
    assert len(await transfers_from(studio_server.devnet, payer.address)) == 2  # the upload, the edit


async def test_follows_the_event_stream_instead_of_polling(studio_server: PaidServer, tmp_path: Path) -> None:
    payer = await new_payer(studio_server.devnet, 1_000_000)
    counting = Counting()
    seen: list[JobStatus] = []
    async with AsyncStudio(
        studio_server.base, Wallet(payer.key), transport=counting, follow_events=True
    ) as studio:
        done = await studio.generate(*IMAGE, out_dir=tmp_path, on_update=lambda job: seen.append(job.status))
    assert done.status is JobStatus.COMPLETE and Image.open(done.files[0]).width > 0
    assert seen[-1] is JobStatus.COMPLETE and len(seen) >= 2  # the first view, then the end
    assert counting.paths.count(f"/api/jobs/{done.job_id}/events") == 2  # the sign-in 402, the stream
    assert f"/api/jobs/{done.job_id}" not in counting.paths  # no polling
