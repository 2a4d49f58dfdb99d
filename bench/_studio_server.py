"""studio402 for bench/paid_request.py: the real payment path (verify -> reserve -> settle -> job row) on the
bench's anvil, with a backend that answers at once so generation does not compete for the CPU."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import uvicorn
from fastapi.responses import JSONResponse
from PIL import Image

from studio402.api.app import create_app
from studio402.backends.base import Ask, BackendJob, Output, Poll, Submitted, UpstreamStatus
from studio402.backends.registry import BackendRegistry
from studio402.config import Settings
from studio402.wiring import Wiring


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


class InstantBackend:
    name = "instant"

    def supports(self, route_key: str) -> bool:
        return True

    def refusal(self, ask: Ask) -> str | None:
        return None

    async def submit(self, job: BackendJob) -> Submitted:
        return Submitted(None, Poll(UpstreamStatus.SUCCEEDED, 100, (Output(PNG, "image/png"),)))

    async def poll(self, job: BackendJob, upstream_id: str) -> Poll:
        raise AssertionError

    async def cancel(self, job: BackendJob, upstream_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--network-json", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=0)  # API-only by default, like the reference
    # also offer a devnet rail (its devnet lives in --data-dir): tempo (MPP charge) or solana (x402 SVM)
    parser.add_argument("--devnet-rail", choices=["tempo", "solana"])
    cli = parser.parse_args()
    rail = {f"devnet.{cli.devnet_rail}": True} if cli.devnet_rail else {}
    settings = Settings(data_dir=Path(cli.data_dir)).with_overrides(
        **{
            "server.port": cli.port,
            "payments.networks": [json.loads(cli.network_json)],
            "payments.refund": "none",
            "jobs.workers": cli.workers,
            **rail,
        }
    )  # API-only, like the reference: generation would compete for the CPU
    backend = InstantBackend()
    wiring = Wiring(settings, registry=BackendRegistry({backend.name: backend}, default=[backend.name]))
    app = create_app(wiring)

    @app.get("/bench/job/{job_id}")
    async def unauthenticated_poll(job_id: str, payer: str) -> JSONResponse:
        """The job route minus SIGN-IN-WITH-X: isolates what authentication costs (bench only)."""
        job = await wiring.jobs.get_for(payer, job_id)
        return JSONResponse(wiring.lifecycle.view(job) if job else {}, headers={"Cache-Control": "no-store"})

    uvicorn.run(app, host="127.0.0.1", port=cli.port, log_level="warning", lifespan="on")
