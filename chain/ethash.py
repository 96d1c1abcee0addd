"""Ethash seal verification (the light client's check), after ethereum/execution-specs'
``ethash.py``.

py-evm's Ethash cannot be used: its cache generation XORs each item with
``bytes(index)`` (zeros) instead of the cache item at that index, and its seed for
later epochs hashes a hex serialisation, so it fails ethereum/tests' own
``PoWTests/ethash_tests.json`` vector and refuses correctly mined blocks. Its hashimoto
loop and dataset item are right given a right cache, so they are used here with one.

Pure Python: the first check in an epoch builds that epoch's 16 MB cache (about ten
seconds), kept for the next blocks; each check then derives 128 dataset items from it.
"""

from functools import lru_cache

from Crypto.Hash import keccak
from eth.consensus.ethash import hashimoto_light

EPOCH_SIZE = 30_000
HASH_BYTES = 64
MIX_BYTES = 128
INITIAL_CACHE_SIZE = 2**24
CACHE_EPOCH_GROWTH_SIZE = 2**17
INITIAL_DATASET_SIZE = 2**30
DATASET_EPOCH_GROWTH_SIZE = 2**23
CACHE_ROUNDS = 3


class InvalidSeal(Exception):
    """A proof of work that does not verify; the message says how."""


def _keccak(data: bytes, bits: int) -> bytes:
    return keccak.new(data=data, digest_bits=bits).digest()


def _is_prime(number: int) -> bool:
    return number > 1 and all(number % i for i in range(2, int(number**0.5) + 1))


def cache_size(block_number: int) -> int:
    size = INITIAL_CACHE_SIZE + CACHE_EPOCH_GROWTH_SIZE * (block_number // EPOCH_SIZE)
    size -= HASH_BYTES
    while not _is_prime(size // HASH_BYTES):
        size -= 2 * HASH_BYTES
    return size


def dataset_size(block_number: int) -> int:
    size = INITIAL_DATASET_SIZE + DATASET_EPOCH_GROWTH_SIZE * (block_number // EPOCH_SIZE)
    size -= MIX_BYTES
    while not _is_prime(size // MIX_BYTES):
        size -= 2 * MIX_BYTES
    return size


@lru_cache(maxsize=2)
def epoch_cache(epoch: int) -> tuple[tuple[int, ...], ...]:
    """The cache of an epoch, as 16-word rows of little-endian 32-bit words."""
    seed = b"\x00" * 32
    for _ in range(epoch):
        seed = _keccak(seed, 256)
    words = cache_size(epoch * EPOCH_SIZE) // HASH_BYTES
    cache = [_keccak(seed, 512)]
    for _ in range(1, words):
        cache.append(_keccak(cache[-1], 512))
    for _ in range(CACHE_ROUNDS):
        for index in range(words):
            other = cache[int.from_bytes(cache[index][:4], "little") % words]
            mixed = int.from_bytes(cache[index - 1], "little") ^ int.from_bytes(other, "little")
            cache[index] = _keccak(mixed.to_bytes(HASH_BYTES, "little"), 512)
    return tuple(
        tuple(int.from_bytes(row[i : i + 4], "little") for i in range(0, HASH_BYTES, 4))
        for row in cache
    )


def check_seal(
    block_number: int, mining_hash: bytes, mix_hash: bytes, nonce: bytes, difficulty: int
) -> None:
    """Raise :class:`InvalidSeal` unless ``nonce`` and ``mix_hash`` prove the work."""
    output = hashimoto_light(
        dataset_size(block_number), epoch_cache(block_number // EPOCH_SIZE), mining_hash, nonce
    )
    if output["mix_digest"] != mix_hash:
        raise InvalidSeal(
            f"mix hash 0x{mix_hash.hex()}, the nonce gives 0x{output['mix_digest'].hex()}"
        )
    if int.from_bytes(output["result"], "big") > 2**256 // difficulty:
        raise InvalidSeal(f"the nonce's result is above 2**256 / difficulty {difficulty}")
