"""Keeping to a send rate, and waiting politely after being throttled."""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket: at most `rate` acquisitions per second on average, in bursts of at most `burst`."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate
        self._burst = max(1.0, burst)
        self._tokens = self._burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    def acquire(self, *, max_wait: float | None = None) -> bool:
        """Take one token, waiting for it; False (taking nothing, waiting not at all) when that would mean
        waiting longer than `max_wait` seconds."""
        while True:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1 - 1e-9:  # float rounding must not make a wait never quite end
                self._tokens = max(0.0, self._tokens - 1)
                return True
            wait = (1 - self._tokens) / self._rate
            if max_wait is not None and wait > max_wait:
                return False
            self._sleep(wait)


def backoff_delay(attempt: int, *, base: float = 0.05, cap: float = 2.0) -> float:
    """Exponential backoff with full jitter (attempt 0, 1, 2, ...)."""
    return random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - jitter, not security
