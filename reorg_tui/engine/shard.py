"""Sharding a source between instances: ``--shard K/N`` takes only the files whose path, relative
to the source, hashes to K of N.

The hash must give every file the same shard on every host, every Python version and every run:
so not ``hash()`` (salted per process by PYTHONHASHSEED) but the first 8 bytes of BLAKE2b of the
path's bytes as the filesystem holds them (``os.fsencode``: the UTF-8 bytes, with undecodable
bytes given back as they were, whatever the locale), read big-endian, modulo N. The tests pin
known values: a change here would hand files to other shards than those that hold their retries
and their history, so it must not happen by accident.

Threads: none of its own; a ``Shard`` is a frozen value read by any thread.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

MAX_SHARDS = 1024  # more instances than this on one source is a fleet: the coordinator's job
_FORM = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", re.ASCII)


def shard_of(rel: str, n: int) -> int:
    """The shard, 0 to n - 1, of the file at ``rel`` ("/"-separated, relative to the source)."""
    digest = hashlib.blake2b(os.fsencode(rel), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` of ``n`` (0 <= k < n <= MAX_SHARDS)."""

    k: int
    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.n <= MAX_SHARDS or not 0 <= self.k < self.n:
            raise ValueError(f"{self.k}/{self.n} is not a shard: K must be 0 to N-1, N 1 to {MAX_SHARDS}")

    def owns(self, rel: str) -> bool:
        return shard_of(rel, self.n) == self.k

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"

    @property
    def folder(self) -> str:
        """Its state folder's name, below the state folder given (or the default one)."""
        return f"shard-{self.k}-of-{self.n}"

    def siblings(self) -> list[Shard]:
        """The other shards of the same N."""
        return [Shard(k, self.n) for k in range(self.n) if k != self.k]


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> Shard; ValueError with a sentence saying what is wrong."""
    match = _FORM.fullmatch(text)
    if match is None:
        raise ValueError("is not K/N (this instance's shard K, from 0, of N instances), such as 0/4")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1:
        raise ValueError("has N = 0: N is how many instances share the source, at least 1")
    if n > MAX_SHARDS:
        raise ValueError(f"has N = {n}: at most {MAX_SHARDS} shards")
    if k >= n:
        raise ValueError(f"has K = {k}, not below N = {n}: the shards of {n} are 0/{n} to {n - 1}/{n}")
    return Shard(k, n)
