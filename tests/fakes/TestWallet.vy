# pragma version ~=0.4.3
# A minimal EIP-1271 smart wallet for tests: a signature is valid when its owner signed the hash.

owner: public(address)

@deploy
def __init__(_owner: address):
    self.owner = _owner

@view
@external
def isValidSignature(_hash: bytes32, _signature: Bytes[65]) -> bytes4:
    r: uint256 = convert(slice(_signature, 0, 32), uint256)
    s: uint256 = convert(slice(_signature, 32, 32), uint256)
    v: uint8 = convert(slice(_signature, 64, 1), uint8)
    if ecrecover(_hash, v, r, s) == self.owner:
        return 0x1626ba7e
    return 0xffffffff
