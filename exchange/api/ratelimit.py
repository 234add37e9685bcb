"""A token bucket per API key: ``rate_per_s`` sustained, ``burst`` at once; 429 beyond."""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]

MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill s)
        self._lock = threading.Lock()

    def allow(self, key: str, weight: float = 1.0) -> float:
        """Take ``weight`` tokens for ``key`` (a request's cost; 1 for most): 0.0 if allowed,
        else the seconds until they are free."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            if tokens < weight:
                self._buckets[key] = (tokens, now)
                return (weight - tokens) / self.rate_per_s
            if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
                self._buckets.clear()
            self._buckets[key] = (tokens - weight, now)
            return 0.0
