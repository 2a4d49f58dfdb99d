"""SIGN-IN-WITH-X verification for the job-polling routes (the hottest path).

A poll carries `SIGN-IN-WITH-X: base64(JSON)` (x402 `sign-in-with-x` extension). We check, in order:
well-formed -> domain == our public host -> uri == the requested URL (query included, so a captured header
opens nothing else) -> chain supported -> issuedAt not in the future (60 s skew allowed, for clocks of other
processes or of clients that stamp their own issuedAt) -> issuedAt at most `max_age_seconds` old ->
expirationTime not passed -> notBefore reached (both without skew, as in `siwe`) -> EIP-191 signature by
`address` (coincurve), else EIP-1271 through the `Eip1271Checker` port when one is configured. A proof on a
configured Solana network (`solana_networks`, CAIP-2) must be of type ed25519 and is checked as Sign in with
Solana (auth/siws.py).

Domain and origin come only from the configured public URL, never from Host / X-Forwarded-* headers.
Nonces are not tracked (as in the official server): a header can be replayed for the same URL within its
validity window, which only re-reads what its signer may read.

`verify` returns the payer address in **lowercase** `0x` hex for EVM, the base58 key as sent for Solana;
the job store compares payers lowercased.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from studio402.auth.evm_signature import decode_signature, personal_sign_hash, recover_address
from studio402.auth.interfaces import Eip1271Checker
from studio402.auth.siws import ed25519_signed
from studio402.auth.siwx_challenge import SIWX_EXTENSION_KEY, build_extension, build_payment_required
from studio402.auth.siwx_proof import SiwxCode, SiwxProof, build_message, check_encoding, parse_header
from studio402.config import canonical_public_url
from studio402.errors import AuthError, ConfigError

__all__ = [
    "SIWX_EXTENSION_KEY",
    "SIWX_HEADER",
    "Eip1271Checker",
    "SiwxCode",
    "SiwxProof",
    "SiwxVerifier",
    "build_message",
    "parse_header",
]

SIWX_HEADER = "SIGN-IN-WITH-X"
DEFAULT_MAX_AGE_SECONDS = 300
DEFAULT_CLOCK_SKEW_SECONDS = 60
DEFAULT_STATEMENT = "Sign in to read your jobs"
VERIFIED_CACHE_SIZE = 10_000
MISSING_ERROR = "SIGN-IN-WITH-X header is required"

# EIP-4361 statement grammar: 1*( reserved / unreserved / " " ); the official client refuses anything else.
_STATEMENT = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]+")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _public_base(public_url: str) -> tuple[str, str, str]:
    """(domain, origin, base URL) of the public URL; the default port is dropped, as clients drop it."""
    try:
        base = canonical_public_url(public_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    parts = urlsplit(base)
    return parts.netloc, f"{parts.scheme}://{parts.netloc}", base


def _check_statement(statement: str | None) -> str | None:
    if statement is not None and not _STATEMENT.fullmatch(statement):
        raise ConfigError(f"SIWX statement has characters EIP-4361 forbids: {statement!r}")
    return statement


class SiwxVerifier:
    """Checks SIGN-IN-WITH-X proofs for one public origin and issues the matching 402 challenges.

    `clock` must return an aware datetime. `statement` is the default text of our challenges.
    """

    def __init__(
        self,
        public_url: str,
        *,
        supported_chain_ids: Sequence[int],
        solana_networks: Sequence[str] = (),
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], datetime] = utc_now,
        contract_checker: Eip1271Checker | None = None,
        clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        statement: str | None = DEFAULT_STATEMENT,
        cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        if not supported_chain_ids and not solana_networks:
            raise ConfigError("SIWX needs at least one supported chain id")
        self.domain, self.origin, self._base = _public_base(public_url)
        self.chain_ids = tuple(dict.fromkeys(supported_chain_ids))
        self.solana_networks = tuple(dict.fromkeys(solana_networks))
        self._max_age = timedelta(seconds=max_age_seconds)
        self._skew = timedelta(seconds=clock_skew_seconds)
        self._clock = clock
        self._checker = contract_checker
        self._statement = _check_statement(statement)
        # Clients poll with the same header for its whole validity window: remember headers whose
        # signature checked out (keyed by the exact header text), so repeated polls skip the crypto.
        self._verified: OrderedDict[str, tuple[SiwxProof, str]] = OrderedDict()
        self._cache_size = cache_size

    def url_for(self, path: str, query: str = "") -> str:
        """The public URL of a request: base URL + path + `?` + the raw query string (not re-encoded)."""
        return f"{self._base}{path}?{query}" if query else f"{self._base}{path}"

    async def verify(self, header_value: str | None, *, request_url: str) -> str:
        """The lowercase address that signed a valid proof for `request_url`, else AuthError(code)."""
        if not header_value:
            raise AuthError(MISSING_ERROR, code=SiwxCode.MISSING)
        cached = self._verified.get(header_value)
        if cached is not None:  # a header seen before: its signature holds; times and URL are checked again
            self.check_claims(cached[0], request_url=request_url)
            return cached[1]
        proof = parse_header(header_value)
        chain_id = self.check_claims(proof, request_url=request_url)
        address = await self._check_signature(proof, chain_id)
        if self._cache_size:
            self._verified[header_value] = (proof, address)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return address

    def check_claims(self, proof: SiwxProof, *, request_url: str) -> int | None:
        """Every check but the signature; the EIP-155 chain id of the proof, None for a Solana proof."""
        if proof.domain != self.domain:
            raise AuthError(f"SIWX domain must be {self.domain!r}", code=SiwxCode.WRONG_DOMAIN)
        if proof.uri != request_url or not proof.uri.startswith(self._base + "/"):
            raise AuthError("SIWX uri must equal the requested URL", code=SiwxCode.WRONG_URI)
        chain_id = proof.evm_chain_id
        solana = proof.chain_id in self.solana_networks and proof.type == "ed25519"
        if not solana and (chain_id is None or chain_id not in self.chain_ids or proof.type != "eip191"):
            raise AuthError(
                f"SIWX chain {proof.chain_id!r} is not supported", code=SiwxCode.UNSUPPORTED_CHAIN
            )
        check_encoding(proof)
        self._check_times(proof, self._clock())
        return chain_id

    def _check_times(self, proof: SiwxProof, now: datetime) -> None:
        issued = proof.issued
        if issued > now + self._skew:
            raise AuthError("SIWX issuedAt is in the future", code=SiwxCode.ISSUED_IN_FUTURE)
        if now - issued > self._max_age:
            raise AuthError("SIWX proof is too old; sign a fresh one", code=SiwxCode.TOO_OLD)
        expires = proof.expires
        if expires is not None and now >= expires:
            raise AuthError("SIWX proof has expired", code=SiwxCode.EXPIRED)
        valid_from = proof.valid_from
        if valid_from is not None and now < valid_from:
            raise AuthError("SIWX proof is not valid yet (notBefore)", code=SiwxCode.NOT_YET_VALID)

    async def _check_signature(self, proof: SiwxProof, chain_id: int | None) -> str:
        if chain_id is None:  # check_claims let it through: a Solana proof
            if ed25519_signed(proof):
                return proof.address
            raise AuthError("SIWX signature does not match the address", code=SiwxCode.BAD_SIGNATURE)
        message_hash = personal_sign_hash(build_message(proof))
        signature = decode_signature(proof.signature)
        claimed = proof.address.lower()
        if recover_address(message_hash, signature) == claimed:
            return claimed
        # Not an EOA signature of `address`: maybe a smart wallet (ChainError from the port propagates).
        if self._checker is not None and await self._checker.is_valid_signature(
            chain_id, proof.address, message_hash, signature
        ):
            return claimed
        raise AuthError("SIWX signature does not match the address", code=SiwxCode.BAD_SIGNATURE)

    def challenge_extension(self, request_url: str, *, statement: str | None = None) -> dict[str, Any]:
        """`extensions["sign-in-with-x"]` of a 402 for `request_url` (fresh nonce, issuedAt = now)."""
        return build_extension(
            domain=self.domain,
            uri=request_url,
            chain_ids=self.chain_ids,
            solana_networks=self.solana_networks,
            now=self._clock(),
            ttl_seconds=self._max_age.total_seconds(),
            statement=_check_statement(statement) or self._statement,
        )

    def payment_required_body(
        self, request_url: str, *, error: str = MISSING_ERROR, description: str = "Job status"
    ) -> dict[str, Any]:
        """The decoded PAYMENT-REQUIRED object of an auth-only route (`accepts: []`)."""
        return build_payment_required(
            request_url, self.challenge_extension(request_url), error=error, description=description
        )
