"""CPU cost of one SIGN-IN-WITH-X check: studio402's verifier vs the official x402 SDK path, same headers.

The SDK path is what its request hook runs per poll: parse_siwx_header -> validate_siwx_message ->
verify_siwx_signature (which re-parses the EIP-4361 text with the `siwe` ABNF grammar).

    .venv/bin/python bench/siwx_verify.py [--iterations 2000] [--sdk-iterations 200] [--headers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from eth_account import Account
from x402.extensions.sign_in_with_x import (
    create_siwx_client_hook,
    parse_siwx_header,
    validate_siwx_message,
    verify_siwx_signature,
)
from x402.schemas import PaymentRequired, PaymentRequiredContext

from studio402.auth.siwx import SiwxVerifier

PUBLIC_URL = "http://127.0.0.1:8402"


async def make_headers(verifier: SiwxVerifier, count: int) -> list[tuple[str, str]]:
    """(request URL, header) pairs signed by the official client for our own challenges."""
    account = Account.create()
    hook = create_siwx_client_hook(account)
    pairs = []
    for i in range(count):
        url = verifier.url_for(f"/api/jobs/job-{i:04d}", "wait=0" if i % 2 else "")
        required = PaymentRequired.model_validate(verifier.payment_required_body(url))
        result = await hook(PaymentRequiredContext(payment_required=required, request_url=url))
        assert result is not None
        pairs.append((url, result.headers["sign-in-with-x"]))
    return pairs


async def sdk_check(header: str) -> str:
    payload = parse_siwx_header(header)
    validation = await validate_siwx_message(payload, PUBLIC_URL)
    verification = await verify_siwx_signature(payload)
    assert validation.is_valid and verification.is_valid and verification.payer
    return verification.payer


async def cpu_per_call(
    check: Callable[[str, str], Awaitable[Any]], pairs: list[tuple[str, str]], iterations: int
) -> float:
    """Mean process CPU seconds per call (a short warm-up first)."""
    for url, header in pairs[:3]:
        await check(url, header)
    start = time.process_time()
    for i in range(iterations):
        url, header = pairs[i % len(pairs)]
        await check(url, header)
    return (time.process_time() - start) / iterations


async def main(iterations: int, sdk_iterations: int, header_count: int) -> None:
    # cache_size=0: every call does the full check (parse, rebuild, recover), as for a header never seen.
    verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[31337], cache_size=0)
    warm_verifier = SiwxVerifier(PUBLIC_URL, supported_chain_ids=[31337])
    pairs = await make_headers(verifier, header_count)

    async def ours(url: str, header: str) -> str:
        return await verifier.verify(header, request_url=url)

    async def ours_warm(url: str, header: str) -> str:
        return await warm_verifier.verify(header, request_url=url)

    async def sdk(url: str, header: str) -> str:
        return await sdk_check(header)

    async def sdk_parse_validate(url: str, header: str) -> None:
        await validate_siwx_message(parse_siwx_header(header), PUBLIC_URL)

    # Same answer from both before timing anything.
    for url, header in pairs:
        assert (await ours(url, header)) == (await sdk(url, header)).lower()

    ours_s = await cpu_per_call(ours, pairs, iterations)
    warm_s = await cpu_per_call(ours_warm, pairs, iterations)
    sdk_s = await cpu_per_call(sdk, pairs, sdk_iterations)
    sdk_pv_s = await cpu_per_call(sdk_parse_validate, pairs, sdk_iterations)
    rows = [
        ("studio402 SiwxVerifier.verify", iterations, ours_s),
        ("  same header polled again", iterations, warm_s),
        ("x402 SDK parse+validate+verify", sdk_iterations, sdk_s),
        ("  of which parse+validate only", sdk_iterations, sdk_pv_s),
    ]
    print(f"SIGN-IN-WITH-X check, CPU per verification ({header_count} distinct headers, process_time)")
    print(f"{'path':<34}{'iterations':>11}{'ms/verify':>12}{'verifies/s':>12}")
    for name, n, seconds in rows:
        print(f"{name:<34}{n:>11}{seconds * 1e3:>12.3f}{1 / seconds:>12.0f}")
    print(f"ratio SDK / studio402: {sdk_s / ours_s:.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=2000, help="calls of our verifier")
    parser.add_argument(
        "--sdk-iterations", type=int, default=200, help="calls of the SDK path (~60-90 ms each)"
    )
    parser.add_argument("--headers", type=int, default=8, help="distinct signed headers to cycle through")
    args = parser.parse_args()
    asyncio.run(main(args.iterations, args.sdk_iterations, args.headers))
