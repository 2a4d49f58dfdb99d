"""The baseline of bench/paid_request.py: the official x402 SDK's FastAPI middleware with its in-process
facilitator (FacilitatorWeb3Signer over RPC), on the same anvil; the handler writes a job row."""

from __future__ import annotations

import argparse
import secrets

import aiosqlite
import uvicorn
from fastapi import FastAPI, Request
from x402 import x402Facilitator, x402ResourceServer
from x402.http.middleware.fastapi import payment_middleware
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.mechanisms.evm.exact.register import register_exact_evm_facilitator
from x402.mechanisms.evm.signers import FacilitatorWeb3Signer
from x402.schemas import AssetAmount


def build(args: argparse.Namespace) -> FastAPI:
    facilitator = x402Facilitator()
    register_exact_evm_facilitator(
        facilitator, FacilitatorWeb3Signer(args.settler_key, args.rpc), networks=args.network
    )
    server = x402ResourceServer(facilitator)
    server.register(args.network, ExactEvmServerScheme())  # type: ignore[no-untyped-call,arg-type]  # untyped SDK class
    price = AssetAmount(amount=str(args.amount), asset=args.token, extra={"name": args.name, "version": "2"})
    routes = {
        "POST /api/generate/*": {
            "accepts": {
                "scheme": "exact",
                "network": args.network,
                "payTo": args.pay_to,
                "price": price,
                "maxTimeoutSeconds": 300,
            }
        }
    }
    app = FastAPI()
    db: dict[str, aiosqlite.Connection] = {}
    middleware = payment_middleware(routes, server)  # type: ignore[arg-type]  # the SDK takes plain dicts too

    @app.middleware("http")
    async def x402(request: Request, call_next):  # type: ignore[no-untyped-def]
        return await middleware(request, call_next)

    @app.on_event("startup")
    async def open_db() -> None:
        db["conn"] = await aiosqlite.connect(args.db)
        await db["conn"].execute("create table if not exists jobs (id text primary key, body text)")

    @app.post("/api/generate/{model}/{operation}")
    async def generate(model: str, operation: str, request: Request) -> dict[str, str]:
        job_id = "job_" + secrets.token_hex(12)
        await db["conn"].execute("insert into jobs values (?, ?)", (job_id, (await request.body()).decode()))
        await db["conn"].commit()
        return {"jobId": job_id, "status": "pending"}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("rpc", "token", "pay-to", "settler-key", "network", "name", "db"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--amount", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    cli = parser.parse_args()
    uvicorn.run(build(cli), host="127.0.0.1", port=cli.port, log_level="warning")
