"""The mailer's pace: a token bucket that never exceeds its rate, and jittered backoff."""

from __future__ import annotations

from newsdesk.services.pacing import RateLimiter, backoff_delay


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_keeps_to_its_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock.monotonic, sleep=clock.sleep)

    for _ in range(501):
        limiter.acquire()

    assert abs((clock.now - 100.0) - 10.0) < 1e-6  # 500 intervals of 1/50 s after the first token


def test_idle_time_does_not_buy_a_burst_beyond_the_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, burst=2, clock=clock.monotonic, sleep=clock.sleep)
    clock.now += 60  # a long pause

    for _ in range(4):
        limiter.acquire()

    assert abs((clock.now - 160.0) - 0.2) < 1e-6  # two at once, then two at the rate


def test_backoff_grows_and_is_capped() -> None:
    assert all(0 <= backoff_delay(0) <= 0.05 for _ in range(100))
    assert all(0 <= backoff_delay(20) <= 2.0 for _ in range(100))
    assert max(backoff_delay(5) for _ in range(200)) > 0.05 * 2**4
