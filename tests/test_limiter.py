"""The per-endpoint limiter: never more than rpm arrivals per window at the server."""

from __future__ import annotations

import random
import threading
import time

import pytest
from fakes import FakeTime

from runner.bria.limiter import RateLimiter

KEY = "GET /v2/status/{id}"




def run_requests(
    limiter: RateLimiter, t: FakeTime, latencies: list[float]
) -> list[tuple[float, float]]:
    """Send one request per latency, one after another: (sent, answered) times."""
    spans = []
    for latency in latencies:
        limiter.acquire(KEY)
        sent = t.now
        t.now += latency
        limiter.release(KEY)
        spans.append((sent, t.now))
    return spans


def max_arrivals_in_window(arrivals: list[float], window: float) -> int:
    arrivals = sorted(arrivals)
    return max(sum(1 for b in arrivals if a <= b < a + window) for a in arrivals)


@pytest.mark.parametrize("rpm", [1, 5, 60], ids=lambda r: f"rpm{r}")
def test_server_never_sees_more_than_rpm_per_window(rpm: int) -> None:
    t, rng = FakeTime(), random.Random(rpm)
    limiter = RateLimiter(rpm, 60.0, clock=t.clock, sleep=t.sleep)
    spans = run_requests(limiter, t, [rng.uniform(0.0, 5.0) for _ in range(rpm * 4)])
    # The server sees each request at some moment between sending and answer.
    for trial in range(20):
        pick = random.Random(trial)
        arrivals = [pick.uniform(sent, answered) for sent, answered in spans]
        assert max_arrivals_in_window(arrivals, 60.0) <= rpm


def test_a_slot_frees_one_window_after_its_answer_and_not_later() -> None:
    t = FakeTime()
    limiter = RateLimiter(3, 60.0, clock=t.clock, sleep=t.sleep)
    spans = run_requests(limiter, t, [2.0] * 7)
    sent = [s for s, _ in spans]
    answered = [a for _, a in spans]
    assert sent[:3] == [1000.0, 1002.0, 1004.0]  # the first rpm go at once
    for i in range(3, 7):
        assert sent[i] == max(answered[i - 3] + 60.0, answered[i - 1])


def test_endpoints_are_limited_separately() -> None:
    t = FakeTime()
    limiter = RateLimiter(1, 60.0, clock=t.clock, sleep=t.sleep)
    for key in ("GET /a", "GET /b", "POST /a"):
        limiter.acquire(key)
        limiter.release(key)
    assert t.sleeps == []
    limiter.acquire("GET /a")
    assert t.sleeps == [60.0]


def test_a_429_blocks_that_endpoint_until_retry_after() -> None:
    t, waits = FakeTime(), []
    limiter = RateLimiter(
        None, 60.0, clock=t.clock, sleep=t.sleep, on_wait=lambda k, s: waits.append((k, s))
    )
    limiter.block(KEY, 12.5)
    limiter.acquire("GET /other")
    assert t.sleeps == []
    assert limiter.acquire(KEY) == 12.5
    assert t.sleeps == [12.5]
    assert waits == [(KEY, 12.5)]
    limiter.release(KEY)
    limiter.acquire(KEY)  # the block is over
    assert t.sleeps == [12.5]


def test_without_rpm_nothing_waits() -> None:
    t = FakeTime()
    limiter = RateLimiter(None, 60.0, clock=t.clock, sleep=t.sleep)
    run_requests(limiter, t, [0.0] * 500)
    assert t.sleeps == []


def test_rpm_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rpm must be at least 1"):
        RateLimiter(0)


def test_in_flight_requests_hold_their_slots_across_threads() -> None:
    limiter = RateLimiter(2, 60.0)  # real time: a waiter is woken by the release
    limiter.acquire(KEY)
    limiter.acquire(KEY)
    got = threading.Event()

    def third() -> None:
        limiter.acquire(KEY)
        got.set()

    worker = threading.Thread(target=third, daemon=True)
    worker.start()
    assert not got.wait(0.05)  # both slots are in flight: no third request
    limiter.release(KEY)
    # Released, but that slot now counts until a window after its answer: still blocked.
    assert not got.wait(0.05)
    assert limiter.stats()[KEY]["in_flight"] == 1


def test_threads_share_the_window() -> None:
    window, rpm = 0.25, 3
    limiter = RateLimiter(rpm, window)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(3):
            limiter.acquire(KEY)
            sent = time.monotonic()
            answered = time.monotonic()
            limiter.release(KEY)
            with lock:
                spans.append((sent, answered))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans.sort()
    assert len(spans) == 9
    # Ordering, not speed: the (i+rpm)-th request was sent a window after the i-th answer.
    answers = sorted(a for _, a in spans)
    sends = [s for s, _ in spans]
    for i in range(len(spans) - rpm):
        assert sends[i + rpm] >= answers[i] + window - 1e-3
