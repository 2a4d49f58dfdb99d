"""x402 `exact` on Solana (specs/schemes/exact/scheme_exact_svm.md): the checks that need no chain.

The payer sends a partially signed versioned transaction whose fee payer is us. We co-sign and pay its fee,
so everything it could make our key do is checked here, strictly:
- instructions: compute-unit limit, compute-unit price (≤ 5 lamports/CU), one `TransferChecked`, then at
  most three Memo / Lighthouse instructions; a memo (ours, or a nonce of ≥ 16 bytes) is mandatory;
- the transfer: our mint and decimals, exactly the quoted amount, to payTo's associated token account;
- the fee payer is account 0 and appears in no instruction (as account or program): it can never be drained;
- exactly two signers (fee payer, payer), no address lookup tables, the payer's signature valid.
Chain facts (a fresh blockhash, balances) are the settlement port's `simulate`.

The ledger key of a payment is its transaction's signature: our fee-payer signature over the message
(ed25519 is deterministic), i.e. the id the chain will know it by. Every copy of one transaction has the
same key, so a duplicate maps to the same payment."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from solders.instruction import CompiledInstruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from x402.schemas import PaymentPayload

from studio402.errors import MalformedPayment, PaymentRejected
from studio402.money import Asset, to_atomic
from studio402.payments.offers import SCHEME_EXACT, Offer, Requirement
from studio402.payments.outcome import SettleOutcome
from studio402.payments.x402 import MismatchReasons, check_accepted

if TYPE_CHECKING:  # the port (payments/interfaces.py) is only a type here
    from studio402.payments.interfaces import OnSigned, Verified

COMPUTE_BUDGET_PROGRAM = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
LIGHTHOUSE_PROGRAM = Pubkey.from_string("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95")

MAX_COMPUTE_UNIT_PRICE = 5_000_000  # micro-lamports per CU (5 lamports): the spec's cap
MAX_COMPUTE_UNIT_LIMIT = 200_000  # the fee we pay is limit x price: bound it too (the client asks 20,000)
MIN_NONCE_BYTES = 16
MAX_MEMO_BYTES = 256
_SET_LIMIT, _SET_PRICE, _TRANSFER_CHECKED = 2, 3, 12
_VERSION_PREFIX = b"\x80"  # a v0 message is signed with its version byte


class Reason(StrEnum):
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    INVALID_NETWORK = "invalid_network"
    INVALID_REQUIREMENTS = "invalid_payment_requirements"
    DECODE = "invalid_exact_svm_payload_transaction_could_not_be_decoded"
    INSTRUCTION_COUNT = "invalid_exact_svm_payload_transaction_instructions_length"
    COMPUTE_LIMIT = "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction"
    COMPUTE_PRICE = "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction"
    COMPUTE_PRICE_TOO_HIGH = (
        "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high"
    )
    NO_TRANSFER = "invalid_exact_svm_payload_no_transfer_instruction"
    UNKNOWN_INSTRUCTION = "invalid_exact_svm_payload_unknown_instruction"
    MINT_MISMATCH = "invalid_exact_svm_payload_mint_mismatch"
    RECIPIENT_MISMATCH = "invalid_exact_svm_payload_recipient_mismatch"
    AMOUNT_MISMATCH = "invalid_exact_svm_payload_amount_mismatch"
    MEMO = "invalid_exact_svm_payload_memo_mismatch"
    FEE_PAYER = "invalid_exact_svm_payload_missing_fee_payer"
    FEE_PAYER_TRANSFERRING = "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds"
    SIGNATURE = "invalid_exact_svm_payload_signature"
    BLOCKHASH_EXPIRED = "invalid_exact_svm_payload_blockhash_expired"
    SIMULATION_FAILED = "transaction_simulation_failed"
    TRANSACTION_FAILED = "transaction_failed"


def reject(reason: Reason, detail: str) -> PaymentRejected:
    return PaymentRejected(detail, code=str(reason))


def associated_token_account(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([bytes(owner), bytes(TOKEN_PROGRAM), bytes(mint)], ATA_PROGRAM)[0]


class FeePayer(Protocol):
    """Our fee-payer key (solders' Keypair fits)."""

    def pubkey(self) -> Pubkey: ...

    def sign_message(self, message: bytes) -> Signature: ...


@dataclass(frozen=True, slots=True)
class SvmOffer(Offer):
    """An SPL stablecoin (classic token program) we accept on one Solana network, paid to `pay_to` (the owner:
    tokens go to its associated token account, which must exist). `asset.address` is the mint. An `Offer`, so
    the engine keys and prices it like the EVM ones (its EIP-712 `name`/`version` are unused here)."""

    fee_payer: str = ""
    memo: str | None = None  # when set, `extra.memo`: the payer's transaction must carry exactly it

    @property
    def mint(self) -> str:
        return self.asset.address

    @property
    def decimals(self) -> int:
        return self.asset.decimals

    def requirement(self, micros: int) -> Requirement:
        extra = {"feePayer": self.fee_payer}
        if self.memo is not None:
            extra["memo"] = self.memo
        return Requirement(
            scheme=SCHEME_EXACT,
            network=self.network,
            asset=self.mint,
            amount=to_atomic(micros, self.decimals),
            pay_to=self.pay_to,
            max_timeout_seconds=self.max_timeout_seconds,
            extra=extra,
        )


def svm_offer(
    network: str, mint: str, decimals: int, pay_to: str, fee_payer: str, max_timeout_seconds: int
) -> SvmOffer:
    asset = Asset(network=network, address=mint, decimals=decimals, name="USD Coin", version="")
    return SvmOffer(asset, pay_to, max_timeout_seconds, fee_payer=fee_payer)


@dataclass(frozen=True, slots=True)
class SvmVerifiedPayment:
    """A transaction that passed every offline check against one requirement, with our signature on it."""

    requirement: Requirement
    transaction: VersionedTransaction  # fully signed: ours in slot 0, the payer's in slot 1
    payer: str
    valid_before: int  # the reconciler's patience; the chain decides by the blockhash (settlement.py)

    @property
    def nonce(self) -> str:
        return str(self.transaction.signatures[0])

    @property
    def raw(self) -> bytes:
        return bytes(self.transaction)

    def to_json(self) -> str:
        return json.dumps(
            {
                "transaction": base64.b64encode(self.raw).decode(),
                "payer": self.payer,
                "validBefore": self.valid_before,
            }
        )

    @classmethod
    def from_json(cls, requirement: Requirement, text: str) -> SvmVerifiedPayment:
        data = json.loads(text)
        tx = VersionedTransaction.from_bytes(base64.b64decode(data["transaction"]))
        return cls(requirement, tx, data["payer"], int(data["validBefore"]))


class SvmSettlement(Protocol):
    """The chain side of `exact` SVM payments (studio402.solana.settlement.SvmSettler)."""

    async def simulate(self, payment: SvmVerifiedPayment) -> str | None: ...

    async def settle(
        self, payment: SvmVerifiedPayment, *, on_signed: OnSigned, timeout: float
    ) -> SettleOutcome: ...

    async def lookup(
        self, payment: SvmVerifiedPayment, tx_hash: str | None, raw_tx: bytes | None
    ) -> SettleOutcome: ...


class SvmExactMethod:
    """Verifies `exact` SVM payloads for one offer, co-signs them, and settles through its chain port."""

    def __init__(self, offer: SvmOffer, fee_payer: FeePayer, settlement: SvmSettlement) -> None:
        if str(fee_payer.pubkey()) != offer.fee_payer:
            raise ValueError("the fee-payer key does not match the offer's feePayer")
        self.offer: Offer = offer  # the port's (invariant) type; `_decimals` keeps what verify needs
        self._decimals = offer.decimals
        self.settlement = settlement
        self._fee_payer = fee_payer
        self._fee_payer_key = fee_payer.pubkey()
        self._mint = Pubkey.from_string(offer.mint)
        self._destination = associated_token_account(Pubkey.from_string(offer.pay_to), self._mint)

    def claimed(self, payload: PaymentPayload) -> tuple[str, str, str] | None:
        """(payer, transaction signature, payer's signature), unverified; None if it is no such payload."""
        try:
            tx = _decode(payload)
        except MalformedPayment:
            return None
        keys = tx.message.account_keys
        if len(keys) < 2 or len(tx.signatures) != 2 or keys[0] != self._fee_payer_key:
            return None
        return str(keys[1]), str(self._co_sign(tx).signatures[0]), str(tx.signatures[1])

    def same_proof(self, stored: str, proof: str) -> bool:
        tx = VersionedTransaction.from_bytes(base64.b64decode(json.loads(stored)["transaction"]))
        return str(tx.signatures[1]) == proof

    def restore(self, requirement: Requirement, stored: str) -> SvmVerifiedPayment:
        return SvmVerifiedPayment.from_json(requirement, stored)

    async def simulate(self, payment: Verified) -> str | None:
        return await self.settlement.simulate(_svm(payment))

    async def settle(self, payment: Verified, *, on_signed: OnSigned, timeout: float) -> SettleOutcome:
        return await self.settlement.settle(_svm(payment), on_signed=on_signed, timeout=timeout)

    async def lookup(self, payment: Verified, tx_hash: str | None, raw_tx: bytes | None) -> SettleOutcome:
        return await self.settlement.lookup(_svm(payment), tx_hash, raw_tx)

    def verify(self, payload: PaymentPayload, requirement: Requirement, now: float) -> SvmVerifiedPayment:
        check_accepted(payload, requirement, _MISMATCH)
        tx = _decode(payload)
        message = tx.message
        if not isinstance(message, MessageV0) or message.address_table_lookups:
            raise reject(Reason.DECODE, "the transaction must be a v0 message without address lookup tables")
        keys = list(message.account_keys)
        header = message.header
        if not keys or keys[0] != self._fee_payer_key:
            raise reject(Reason.FEE_PAYER, f"the fee payer must be {self._fee_payer_key}")
        ixs = list(message.instructions)
        if not 3 <= len(ixs) <= 6:
            raise reject(Reason.INSTRUCTION_COUNT, f"{len(ixs)} instructions; 3 to 6 are allowed")
        self._check_fee_payer_untouched(keys, ixs)  # first: its reason is the one that matters
        if header.num_required_signatures != 2 or len(tx.signatures) != 2:
            raise reject(Reason.SIGNATURE, "exactly two signers are allowed: the fee payer and the payer")
        _check_compute_budget(keys, ixs[0], ixs[1])
        payer = self._check_transfer(keys, ixs[2], requirement)
        if payer != keys[1]:
            raise reject(Reason.SIGNATURE, "the transfer's authority must be the transaction's second signer")
        _check_optional(keys, ixs[3:], requirement.extra.get("memo"))
        if not tx.signatures[1].verify(payer, _VERSION_PREFIX + bytes(message)):
            raise reject(Reason.SIGNATURE, "the payer's signature does not match the transaction")
        return SvmVerifiedPayment(
            requirement, self._co_sign(tx), str(payer), int(now) + requirement.max_timeout_seconds
        )

    def _co_sign(self, tx: VersionedTransaction) -> VersionedTransaction:
        ours = self._fee_payer.sign_message(_VERSION_PREFIX + bytes(tx.message))
        return VersionedTransaction.populate(tx.message, [ours, *list(tx.signatures)[1:]])

    def _check_fee_payer_untouched(self, keys: list[Pubkey], ixs: list[CompiledInstruction]) -> None:
        """Our key pays the fee and nothing else: it is in no instruction, so no program can move its funds
        or act with its signature (index 0 is the fee payer)."""
        for ix in ixs:
            if max([ix.program_id_index, *bytes(ix.accounts)]) >= len(keys):
                raise reject(Reason.DECODE, "an instruction names an account the message does not have")
            if ix.program_id_index == 0 or 0 in bytes(ix.accounts):
                raise reject(Reason.FEE_PAYER_TRANSFERRING, "the fee payer may not appear in any instruction")

    def _check_transfer(
        self, keys: list[Pubkey], ix: CompiledInstruction, requirement: Requirement
    ) -> Pubkey:
        data, accounts = bytes(ix.data), bytes(ix.accounts)
        if keys[ix.program_id_index] != TOKEN_PROGRAM or len(data) != 10 or data[0] != _TRANSFER_CHECKED:
            raise reject(
                Reason.NO_TRANSFER, "the third instruction must be the token program's TransferChecked"
            )
        if len(accounts) != 4:
            raise reject(Reason.NO_TRANSFER, "TransferChecked takes exactly source, mint, destination, owner")
        _source, mint, destination, owner = (keys[i] for i in accounts)
        if mint != self._mint or data[9] != self._decimals:
            raise reject(
                Reason.MINT_MISMATCH, f"the transfer is not of {self._mint} ({self._decimals} decimals)"
            )
        if destination != self._destination:
            raise reject(Reason.RECIPIENT_MISMATCH, f"the transfer must go to {self._destination}")
        amount = int.from_bytes(data[1:9], "little")
        if amount != requirement.amount:
            raise reject(
                Reason.AMOUNT_MISMATCH, f"the transfer is for {amount}, the price is {requirement.amount}"
            )
        return owner


_MISMATCH = MismatchReasons(
    Reason.MINT_MISMATCH, Reason.RECIPIENT_MISMATCH, Reason.AMOUNT_MISMATCH, "feePayer, memo"
)


def _check_compute_budget(keys: list[Pubkey], limit: CompiledInstruction, price: CompiledInstruction) -> None:
    data = bytes(limit.data)
    if keys[limit.program_id_index] != COMPUTE_BUDGET_PROGRAM or len(data) != 5 or data[0] != _SET_LIMIT:
        raise reject(Reason.COMPUTE_LIMIT, "the first instruction must set the compute-unit limit")
    if bytes(limit.accounts) or int.from_bytes(data[1:5], "little") > MAX_COMPUTE_UNIT_LIMIT:
        raise reject(Reason.COMPUTE_LIMIT, f"the compute-unit limit may not exceed {MAX_COMPUTE_UNIT_LIMIT}")
    data = bytes(price.data)
    if keys[price.program_id_index] != COMPUTE_BUDGET_PROGRAM or len(data) != 9 or data[0] != _SET_PRICE:
        raise reject(Reason.COMPUTE_PRICE, "the second instruction must set the compute-unit price")
    if bytes(price.accounts):
        raise reject(Reason.COMPUTE_PRICE, "the compute-unit price instruction takes no accounts")
    if int.from_bytes(data[1:9], "little") > MAX_COMPUTE_UNIT_PRICE:
        raise reject(Reason.COMPUTE_PRICE_TOO_HIGH, "the compute-unit price exceeds 5 lamports per unit")


def _check_optional(keys: list[Pubkey], ixs: list[CompiledInstruction], memo: str | None) -> None:
    """Only Memo / Lighthouse after the transfer; a memo (`extra.memo` exactly, else ≥ 16 bytes of nonce)
    makes each payment's transaction unique."""
    memos = []
    for ix in ixs:
        program = keys[ix.program_id_index]
        if program == MEMO_PROGRAM:
            memos.append(bytes(ix.data))
        elif program != LIGHTHOUSE_PROGRAM:
            raise reject(Reason.UNKNOWN_INSTRUCTION, f"instruction of {program} is not allowed")
    if memo is not None:
        if memos != [memo.encode()]:
            raise reject(Reason.MEMO, "the transaction must carry exactly one memo equal to extra.memo")
    elif not any(MIN_NONCE_BYTES <= len(m) <= MAX_MEMO_BYTES for m in memos):
        raise reject(Reason.MEMO, f"a memo of {MIN_NONCE_BYTES} to {MAX_MEMO_BYTES} bytes is required")


def _decode(payload: PaymentPayload) -> VersionedTransaction:
    raw = payload.payload.get("transaction")
    if not isinstance(raw, str):
        raise MalformedPayment("payload needs a base64 `transaction`", code="invalid_payload")
    try:
        return VersionedTransaction.from_bytes(base64.b64decode(raw, validate=True))
    except ValueError:
        raise MalformedPayment("the transaction cannot be decoded", code=str(Reason.DECODE)) from None


def _svm(payment: Verified) -> SvmVerifiedPayment:
    assert isinstance(payment, SvmVerifiedPayment), payment  # the engine hands a method its own payments
    return payment
