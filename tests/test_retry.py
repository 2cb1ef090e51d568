"""The retry policy: which requests may be sent again, and how long to wait first."""

from __future__ import annotations

import pytest

from runner.bria.retry import RetryPolicy, parse_retry_after


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("GET", 429, True),
        ("GET", 502, True),
        ("PUT", 503, True),
        ("DELETE", 504, True),
        ("GET", None, True),
        ("GET", 500, True),
        ("GET", 400, False),
        ("GET", 404, False),
        ("POST", 429, False),
        ("POST", 503, False),
        ("POST", None, False),
    ],
    ids=lambda v: str(v),
)
def test_only_idempotent_methods_retry_on_transient_failures(
    method: str, status: int | None, expected: bool
) -> None:
    assert RetryPolicy().should_retry(method, status, retry=0) is expected


def test_retries_are_bounded() -> None:
    policy = RetryPolicy(max_retries=3)
    assert [policy.should_retry("GET", 503, n) for n in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_patience_keeps_retrying_an_outage_until_it_has_lasted_that_long() -> None:
    policy = RetryPolicy(max_retries=3, patience=1800.0)
    assert policy.should_retry("GET", None, 40, down_for=1799.0)
    assert policy.should_retry("GET", 503, 40, down_for=1799.0)
    assert not policy.should_retry("GET", None, 40, down_for=1800.0)
    assert policy.should_retry("GET", 500, 40, down_for=1799.0)  # a 500 is waited out too
    assert not policy.should_retry("PUT", 500, 40, down_for=1800.0)
    assert not policy.should_retry("POST", None, 0, down_for=0.0)


def test_full_jitter_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n, lambda: 1.0) for n in range(9)] == [4, 8, 16, 32, 64, 128, 256,
                                                                  300, 300]
    assert [policy.backoff(n, lambda: 0.25) for n in range(3)] == [1.0, 2.0, 4.0]
    assert policy.backoff(2, lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("value", "date", "expected"),
    [
        ("7", None, 7.0),
        ("0.5", None, 0.5),
        ("-3", None, 0.0),
        ("Wed, 21 Oct 2026 07:28:30 GMT", "Wed, 21 Oct 2026 07:28:00 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT", 0.0),
        ("soon", None, None),
        ("", None, None),
        (None, None, None),
    ],
    ids=[
        "seconds",
        "fraction",
        "negative",
        "http-date",
        "date-in-past",
        "garbage",
        "empty",
        "absent",
    ],
)
def test_retry_after_seconds_or_http_date(
    value: str | None, date: str | None, expected: float | None
) -> None:
    assert parse_retry_after(value, date) == expected


def test_retry_after_http_date_without_date_header_uses_now() -> None:
    now = 1_792_567_680.0  # Wed, 21 Oct 2026 07:28:00 GMT
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:12 GMT", None, now=lambda: now) == 12.0
