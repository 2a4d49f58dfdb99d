# pragma version ~=0.4.3
"""
@title TestUSDC
@notice A USDC-like ERC-20 with EIP-3009 (transfer/receive/cancel with authorization) for the
        studio402 devnet. The EIP-712 domain and every revert string follow Circle's FiatToken v2,
        so code that classifies reverts by message behaves as it does against real USDC.
        Deliberately absent: pause, blacklist, upgradeability, EIP-2612 permit and the ERC-1271
        `bytes signature` overloads (Vyper has no overloading).
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

event AuthorizationCanceled:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

name: public(String[64])
symbol: public(String[32])
version: public(String[16])
decimals: public(uint8)
totalSupply: public(uint256)
minter: public(address)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
# True once an authorization nonce was used or canceled (EIP-3009).
authorizationState: public(HashMap[address, HashMap[bytes32, bool]])

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
TRANSFER_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
RECEIVE_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
CANCEL_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "CancelAuthorization(address authorizer,bytes32 nonce)"
)
# secp256k1 group order / 2: larger s values are the malleable twin of a valid signature.
# (Written in decimal: a 32-byte hex literal would be typed bytes32.)
S_UPPER_BOUND: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


@deploy
def __init__(token_name: String[64], token_symbol: String[32], token_version: String[16], token_decimals: uint8):
    self.name = token_name
    self.symbol = token_symbol
    self.version = token_version
    self.decimals = token_decimals
    self.minter = msg.sender


@view
@internal
def _domain_separator() -> bytes32:
    # Computed on every call, so the separator follows chain.id (forks) like FiatToken v2.2.
    return keccak256(
        abi_encode(DOMAIN_TYPEHASH, keccak256(self.name), keccak256(self.version), chain.id, self)
    )


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    return self._domain_separator()


@view
@internal
def _signer_of(struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    assert convert(s, uint256) <= S_UPPER_BOUND, "ECRecover: invalid signature 's' value"
    assert v == 27 or v == 28, "ECRecover: invalid signature 'v' value"
    digest: bytes32 = keccak256(concat(x"1901", self._domain_separator(), struct_hash))
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address), "ECRecover: invalid signature"
    return signer


@view
@internal
def _require_unused(authorizer: address, nonce: bytes32):
    assert not self.authorizationState[authorizer][nonce], "FiatTokenV2: authorization is used or canceled"


@internal
def _spend_authorization(
    typehash: bytes32,
    payer: address,
    payee: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    # Same check order as FiatToken v2: time window, nonce, then signature.
    assert block.timestamp > valid_after, "FiatTokenV2: authorization is not yet valid"
    assert block.timestamp < valid_before, "FiatTokenV2: authorization is expired"
    self._require_unused(payer, nonce)
    struct_hash: bytes32 = keccak256(abi_encode(typehash, payer, payee, amount, valid_after, valid_before, nonce))
    assert self._signer_of(struct_hash, v, r, s) == payer, "FiatTokenV2: invalid signature"
    self.authorizationState[payer][nonce] = True
    log AuthorizationUsed(authorizer=payer, nonce=nonce)


@internal
def _move(sender: address, receiver: address, amount: uint256):
    assert sender != empty(address), "ERC20: transfer from the zero address"
    assert receiver != empty(address), "ERC20: transfer to the zero address"
    assert amount <= self.balanceOf[sender], "ERC20: transfer amount exceeds balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transferWithAuthorization(
    payer: address,
    payee: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    self._spend_authorization(
        TRANSFER_WITH_AUTHORIZATION_TYPEHASH, payer, payee, amount, valid_after, valid_before, nonce, v, r, s
    )
    self._move(payer, payee, amount)


@external
def receiveWithAuthorization(
    payer: address,
    payee: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    # Only the payee may submit, so nobody can front-run the payee's own call.
    assert payee == msg.sender, "FiatTokenV2: caller must be the payee"
    self._spend_authorization(
        RECEIVE_WITH_AUTHORIZATION_TYPEHASH, payer, payee, amount, valid_after, valid_before, nonce, v, r, s
    )
    self._move(payer, payee, amount)


@external
def cancelAuthorization(authorizer: address, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    self._require_unused(authorizer, nonce)
    struct_hash: bytes32 = keccak256(abi_encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
    assert self._signer_of(struct_hash, v, r, s) == authorizer, "FiatTokenV2: invalid signature"
    self.authorizationState[authorizer][nonce] = True
    log AuthorizationCanceled(authorizer=authorizer, nonce=nonce)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._move(msg.sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    assert spender != empty(address), "ERC20: approve to the zero address"
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    assert amount <= self.allowance[sender][msg.sender], "ERC20: transfer amount exceeds allowance"
    self.allowance[sender][msg.sender] -= amount
    self._move(sender, receiver, amount)
    return True


@external
def mint(receiver: address, amount: uint256) -> bool:
    assert msg.sender == self.minter, "FiatToken: caller is not a minter"
    assert receiver != empty(address), "FiatToken: mint to the zero address"
    assert amount > 0, "FiatToken: mint amount not greater than 0"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=empty(address), receiver=receiver, value=amount)
    return True
