"""Per-key rate limits (``limits``: moving window, in memory or in Redis shared by workers).

Each caller — the API key, or the client address while keys are not enforced — gets
``AUTHENTIQ_RATE_LIMIT`` (e.g. ``600/minute``; a key may carry its own). Past it: 429
``rate-limited`` with ``Retry-After`` (seconds until the oldest hit leaves the window). The
moving window allows bursts up to the limit and never more than the limit in any window — what a
token bucket of the same size gives, from a maintained library, with one Redis implementation for
several workers (``AUTHENTIQ_RATE_LIMIT_STORAGE=redis://host:6379``).
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from authentiq.errors import RateLimited


class RateLimiter:
    def __init__(self, default: str, storage_uri: str = "memory://") -> None:
        self.default = parse(default)
        self.storage = storage_from_string(storage_uri)
        self.limiter = MovingWindowRateLimiter(self.storage)

    def hit(self, who: str, limit: str | None = None) -> None:
        item = parse(limit) if limit else self.default
        if self.limiter.hit(item, who):
            return
        reset = self.limiter.get_window_stats(item, who).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise RateLimited(f"{who}: more than {item} requests; retry in {wait} s", retry_after=wait)
