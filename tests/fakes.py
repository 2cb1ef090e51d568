"""Test doubles shared by the client, limiter and retry tests."""

from __future__ import annotations


class FakeTime:
    """A clock that only moves when something sleeps: back-offs are recorded, not slept."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
