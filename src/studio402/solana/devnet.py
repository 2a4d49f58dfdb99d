"""The Solana devnet of one data dir: an in-process LiteSVM with a USDC-like SPL mint, persisted in
`<data_dir>/devnet/`.

    devnet/solana.json        keys (fee payer, payTo, mint), never shown to clients
    devnet/solana-state.json  every account we created or a transaction touched, and transaction statuses

LiteSVM accepts only its latest blockhash, so the devnet keeps one blockhash until `expire_blockhash()` is
called (a test's way to make a transaction stale). Its signature history is kept here too: LiteSVM forgets it
across restarts, and the settler decides outcomes from it (getSignatureStatuses).
All calls are serialized by one lock: the JSON-RPC server calls in from its threads."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solders.account import Account
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from studio402.chain.state import write_atomic
from studio402.errors import InputError

# Solana devnet's CAIP-2 id: one the official clients accept (they refuse unknown Solana networks).
NETWORK = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
DECIMALS = 6
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
_MINT_LEN = 82
TOKEN_ACCOUNT_LEN = 165
_FEE_PAYER_LAMPORTS = 100 * 10**9  # 100 SOL of fees for the settler
_BLOCK_HEIGHT_WINDOW = 150
LAMPORTS_PER_SIGNATURE = 5000  # what a real cluster answers as lastValidBlockHeight - blockHeight


def associated_token_account(owner: Pubkey, mint: Pubkey) -> Pubkey:
    """The associated token account of (owner, mint) under the classic token program."""
    return Pubkey.find_program_address([bytes(owner), bytes(TOKEN_PROGRAM), bytes(mint)], ATA_PROGRAM)[0]


def devnet_keys(data_dir: Path) -> tuple[Keypair, Keypair, Keypair]:
    """(fee payer, payTo, mint) of the data dir's Solana devnet, created on first use. The app reads them
    here (it settles through the devnet's RPC and must not run a second LiteSVM)."""
    path = data_dir / "devnet" / "solana.json"
    names = ("feePayer", "payTo", "mint")
    if path.exists():
        data = json.loads(path.read_text())
        fee_payer, pay_to, mint = (Keypair.from_base58_string(data[k]) for k in names)
        return fee_payer, pay_to, mint
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = (Keypair(), Keypair(), Keypair())
    write_atomic(path, json.dumps({k: str(kp) for k, kp in zip(names, keys, strict=True)}).encode())
    path.chmod(0o600)
    return keys


@dataclass(frozen=True, slots=True)
class SolanaDevnetInfo:
    rpc_url: str
    network: str
    mint: str
    pay_to: str
    fee_payer: str

    def as_public_json(self) -> dict[str, Any]:
        return {
            "rpcUrl": self.rpc_url,
            "network": self.network,
            "mint": self.mint,
            "payTo": self.pay_to,
            "feePayer": self.fee_payer,
        }


@dataclass(frozen=True, slots=True)
class TxStatus:
    """What the chain recorded for one transaction signature: None = succeeded, else the error text."""

    slot: int
    err: str | None


@dataclass(frozen=True, slots=True)
class TokenBalance:
    """One token account's balance of our mint around a transaction, as `meta.*TokenBalances` lists it."""

    account_index: int
    owner: str
    amount: int

    def as_json(self) -> dict[str, Any]:
        return {"accountIndex": self.account_index, "owner": self.owner, "amount": self.amount}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenBalance:
        return cls(data["accountIndex"], data["owner"], data["amount"])


@dataclass(frozen=True, slots=True)
class TxRecord:
    """What `getTransaction` answers from: the transaction and the balances it moved. LiteSVM keeps no
    balances per transaction (and forgets everything on restart), so the devnet records them at send time."""

    raw: bytes
    fee: int
    pre_lamports: list[int]
    post_lamports: list[int]
    pre_tokens: list[TokenBalance]
    post_tokens: list[TokenBalance]
    logs: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "raw": base64.b64encode(self.raw).decode(),
            "fee": self.fee,
            "preLamports": self.pre_lamports,
            "postLamports": self.post_lamports,
            "preTokens": [b.as_json() for b in self.pre_tokens],
            "postTokens": [b.as_json() for b in self.post_tokens],
            "logs": self.logs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TxRecord:
        return cls(
            base64.b64decode(data["raw"]),
            data["fee"],
            data["preLamports"],
            data["postLamports"],
            [TokenBalance.from_json(b) for b in data["preTokens"]],
            [TokenBalance.from_json(b) for b in data["postTokens"]],
            data["logs"],
        )


class SolanaDevnet:
    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir / "devnet"
        self._lock = threading.RLock()
        self._svm = LiteSVM()
        self._touched: set[Pubkey] = set()
        self._statuses: dict[str, TxStatus] = {}
        self._transactions: dict[str, TxRecord] = {}
        self._slot = 1
        self._dir.mkdir(parents=True, exist_ok=True)
        self.fee_payer, self.pay_to, self.mint = devnet_keys(data_dir)
        self._restore_or_create()

    # --- persistence ---------------------------------------------------------------------------
    def _restore_or_create(self) -> None:
        state = self._dir / "solana-state.json"
        if state.exists():
            data = json.loads(state.read_text())
            for address, acc in data["accounts"].items():
                self._set(
                    Pubkey.from_string(address),
                    Account(
                        lamports=acc["lamports"],
                        data=base64.b64decode(acc["data"]),
                        owner=Pubkey.from_string(acc["owner"]),
                        executable=False,
                    ),
                )
            self._statuses = {sig: TxStatus(s["slot"], s["err"]) for sig, s in data["statuses"].items()}
            saved = data.get("transactions", {})  # absent in state written before getTransaction existed
            self._transactions = {sig: TxRecord.from_json(t) for sig, t in saved.items()}
            self._slot = data["slot"]
            return
        self._svm.airdrop(self.fee_payer.pubkey(), _FEE_PAYER_LAMPORTS)
        self._touched.add(self.fee_payer.pubkey())
        mint = Mint(
            mint_authority=self.fee_payer.pubkey(),
            supply=0,
            decimals=DECIMALS,
            is_initialized=True,
            freeze_authority=None,
        )
        self._set(self.mint.pubkey(), self._rent_exempt(bytes(mint)))
        self.ensure_token_account(self.pay_to.pubkey())
        self.save()

    def save(self) -> None:
        """Write every account we know of (and the statuses) so the next start sees the same chain."""
        with self._lock:
            accounts = {}
            for address in sorted(self._touched, key=str):
                acc = self._svm.get_account(address)
                if acc is None or acc.executable:
                    continue
                accounts[str(address)] = {
                    "lamports": acc.lamports,
                    "data": base64.b64encode(bytes(acc.data)).decode(),
                    "owner": str(acc.owner),
                }
            statuses = {sig: {"slot": s.slot, "err": s.err} for sig, s in self._statuses.items()}
            transactions = {sig: t.as_json() for sig, t in self._transactions.items()}
            body = {
                "accounts": accounts,
                "statuses": statuses,
                "transactions": transactions,
                "slot": self._slot,
            }
            write_atomic(self._dir / "solana-state.json", json.dumps(body).encode())

    def _set(self, address: Pubkey, account: Account) -> None:
        self._svm.set_account(address, account)
        self._touched.add(address)

    def _rent_exempt(self, data: bytes) -> Account:
        lamports = self._svm.minimum_balance_for_rent_exemption(len(data))
        return Account(lamports=lamports, data=data, owner=TOKEN_PROGRAM, executable=False)

    # --- faucet -----------------------------------------------------------------------------------
    def info(self, rpc_url: str) -> SolanaDevnetInfo:
        return SolanaDevnetInfo(
            rpc_url, NETWORK, str(self.mint.pubkey()), str(self.pay_to.pubkey()), str(self.fee_payer.pubkey())
        )

    def ensure_token_account(self, owner: Pubkey) -> Pubkey:
        """The owner's associated token account for our mint, created empty if missing."""
        with self._lock:
            ata = associated_token_account(owner, self.mint.pubkey())
            if self._svm.get_account(ata) is None:
                account = TokenAccount(
                    mint=self.mint.pubkey(),
                    owner=owner,
                    amount=0,
                    delegate=None,
                    state=TokenAccountState.Initialized,
                    is_native=None,
                    delegated_amount=0,
                    close_authority=None,
                )
                self._set(ata, self._rent_exempt(bytes(account)))
            return ata

    def fund(self, owner: str, atomic: int) -> int:
        """Mint `atomic` units to owner's token account (created if needed); returns its new balance."""
        try:
            owner_key = Pubkey.from_string(owner)
        except ValueError:
            raise InputError(f"{owner!r} is not a Solana address", code="invalid_address") from None
        if atomic <= 0:
            raise InputError("the amount must be positive", code="invalid_amount")
        with self._lock:
            ata = self.ensure_token_account(owner_key)
            self._rewrite_token(ata, lambda t: t.amount + atomic)
            mint = Mint.from_bytes(bytes(self._account(self.mint.pubkey()).data))
            self._set(self.mint.pubkey(), self._rent_exempt(bytes(_with_supply(mint, mint.supply + atomic))))
            self.save()
            return self.token_balance(ata)

    def _rewrite_token(self, ata: Pubkey, amount: Any) -> None:
        old = TokenAccount.from_bytes(bytes(self._account(ata).data))
        new = TokenAccount(
            mint=old.mint,
            owner=old.owner,
            amount=amount(old),
            delegate=old.delegate,
            state=old.state,
            is_native=old.is_native,
            delegated_amount=old.delegated_amount,
            close_authority=old.close_authority,  # type: ignore[arg-type]  # solders stub says int
        )
        self._set(ata, self._rent_exempt(bytes(new)))

    def _account(self, address: Pubkey) -> Account:
        acc = self._svm.get_account(address)
        if acc is None:
            raise InputError(f"account {address} does not exist", code="account_not_found")
        return acc

    # --- chain reads and writes (the JSON-RPC server's backend) -----------------------------------
    @property
    def slot(self) -> int:
        return self._slot

    def latest_blockhash(self) -> tuple[Hash, int]:
        """(blockhash, lastValidBlockHeight)."""
        with self._lock:
            return self._svm.latest_blockhash(), self._slot + _BLOCK_HEIGHT_WINDOW

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        with self._lock:
            return blockhash == self._svm.latest_blockhash()

    def expire_blockhash(self) -> None:
        """A new blockhash: transactions built on the old one can no longer land (a slot went by)."""
        with self._lock:
            self._svm.expire_blockhash()
            self._slot += 1

    def get_account(self, address: Pubkey) -> Account | None:
        with self._lock:
            return self._svm.get_account(address)

    def minimum_balance(self, length: int) -> int:
        with self._lock:
            return int(self._svm.minimum_balance_for_rent_exemption(length))

    def token_balance(self, ata: Pubkey) -> int:
        with self._lock:
            acc = self._svm.get_account(ata)
            return 0 if acc is None else TokenAccount.from_bytes(bytes(acc.data)).amount

    def token_accounts_of(self, owner: Pubkey) -> list[tuple[Pubkey, Account]]:
        """Token accounts of `owner` for our mint (the devnet has only associated ones)."""
        with self._lock:
            ata = associated_token_account(owner, self.mint.pubkey())
            acc = self._svm.get_account(ata)
            return [] if acc is None else [(ata, acc)]

    def simulate(self, tx: VersionedTransaction) -> tuple[str | None, list[str], int]:
        """(error or None, logs, compute units) of running `tx` now, without keeping its effects."""
        with self._lock:
            result = self._svm.simulate_transaction(tx)
            if isinstance(result, FailedTransactionMetadata):
                meta = result.meta()
                return str(result.err()), list(meta.logs()), int(meta.compute_units_consumed())
            meta = result.meta()
            return None, list(meta.logs()), int(meta.compute_units_consumed())

    def send(self, tx: VersionedTransaction, *, preflight: bool = True) -> str:
        """Process `tx`; returns its signature. Raises InputError when it was refused before running (bad
        blockhash, already processed, bad signature, or, with `preflight` as a cluster's RPC does by default,
        a failing simulation): then nothing was recorded and no fee was taken."""
        with self._lock:
            sig = str(tx.signatures[0])
            if sig in self._statuses:
                raise InputError("This transaction has already been processed", code="already_processed")
            if preflight:
                refused, _logs, _units = self.simulate(tx)
                if refused is not None:
                    raise InputError(f"Transaction simulation failed: {refused}", code="preflight_failed")
            keys = list(tx.message.account_keys)
            err: str | None
            pre_lamports, pre_tokens = self._balances(keys)
            result = self._svm.send_transaction(tx)
            if isinstance(result, FailedTransactionMetadata):
                err = str(result.err())
                if self._svm.get_transaction(tx.signatures[0]) is None:
                    raise InputError(f"Transaction refused: {err}", code="transaction_refused")
                meta = result.meta()
            else:
                err, meta = None, result
            post_lamports, post_tokens = self._balances(keys)
            fee = tx.message.header.num_required_signatures * LAMPORTS_PER_SIGNATURE
            self._transactions[sig] = TxRecord(
                bytes(tx), fee, pre_lamports, post_lamports, pre_tokens, post_tokens, list(meta.logs())
            )
            self._record(tx, sig, err)
            self.save()
            return sig

    def _record(self, tx: VersionedTransaction, sig: str, err: str | None) -> None:
        self._statuses[sig] = TxStatus(self._slot, err)
        self._touched.update(tx.message.account_keys)

    def _balances(self, keys: list[Pubkey]) -> tuple[list[int], list[TokenBalance]]:
        """Lamports of every account of a transaction, and the balances of those that hold our mint."""
        lamports: list[int] = []
        tokens: list[TokenBalance] = []
        for index, key in enumerate(keys):
            acc = self._svm.get_account(key)
            lamports.append(0 if acc is None else acc.lamports)
            if acc is not None and acc.owner == TOKEN_PROGRAM and len(acc.data) == TOKEN_ACCOUNT_LEN:
                token = TokenAccount.from_bytes(bytes(acc.data))
                if token.mint == self.mint.pubkey():
                    tokens.append(TokenBalance(index, str(token.owner), token.amount))
        return lamports, tokens

    def transaction(self, signature: str) -> tuple[TxStatus, TxRecord] | None:
        """A landed transaction (succeeded or failed) and what it moved; None if the chain never saw it."""
        with self._lock:
            status, record = self._statuses.get(signature), self._transactions.get(signature)
            return None if status is None or record is None else (status, record)

    def status(self, signature: str) -> TxStatus | None:
        with self._lock:
            return self._statuses.get(signature)


def _with_supply(mint: Mint, supply: int) -> Mint:
    return Mint(
        mint_authority=mint.mint_authority,
        supply=supply,
        decimals=mint.decimals,
        is_initialized=mint.is_initialized,
        freeze_authority=mint.freeze_authority,
    )


def parse_signature(text: str) -> Signature:
    return Signature.from_string(text)
