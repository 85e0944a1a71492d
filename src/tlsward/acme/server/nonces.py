"""Anti-replay nonces (RFC 8555 section 6.5) and the server's other unguessable values (ids, tokens).

Nonces are kept in memory with a bound: a nonce lives for seconds and is checked on every POST, so a database
round trip per request would halve throughput. A restart forgets them; clients then get ``badNonce`` with a fresh
one and retry, which RFC 8555 requires them to do.

Random values come from BLAKE2b keyed with 32 bytes from the OS, over a counter (a keyed-PRF generator): one
``getrandom`` call per process instead of one per value, because every request makes a fresh nonce and system
calls are the dearest thing in the hot path."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import time
from collections import OrderedDict

_KEY = os.urandom(32)
_COUNTER = itertools.count()


def random_token(size: int = 16) -> str:
    """``size`` unpredictable bytes (at most 64), base64url without padding."""
    digest = hashlib.blake2b(next(_COUNTER).to_bytes(16, "big"), key=_KEY, digest_size=size).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class NoncePool:
    """Issued nonces, oldest evicted first beyond ``capacity`` or ``lifetime_s``."""

    def __init__(self, capacity: int = 200_000, lifetime_s: float = 3600.0) -> None:
        self.capacity = capacity
        self.lifetime_s = lifetime_s
        self._issued: OrderedDict[str, float] = OrderedDict()

    def new(self) -> str:
        nonce = random_token(16)
        self._issued[nonce] = time.monotonic()
        while len(self._issued) > self.capacity:
            self._issued.popitem(last=False)
        return nonce

    def consume(self, nonce: str) -> bool:
        """True once for a nonce this pool issued and has not seen back; False after that."""
        issued = self._issued.pop(nonce, None)
        if issued is None:
            return False
        return time.monotonic() - issued <= self.lifetime_s

    def __len__(self) -> int:
        return len(self._issued)
