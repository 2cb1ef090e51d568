"""The flow control of ``concurrency: auto``: its arithmetic with an injected clock, and its
gate with real threads (no timing asserted, only who got in)."""

from __future__ import annotations

import threading

from fakes import FakeTime

from runner.engine.flow import AUTO_CAP, STORM, Flow, FlowControl, Readings, readings_since

SUBMIT, STATUS = "POST /v2/image/generate/tailored", "GET /v2/status/{id}"


def control(ceiling: int | None = None, rpm: int | None = 60, *, cap: int = 1000,
            time: FakeTime | None = None) -> FlowControl:
    clock = (time or FakeTime()).clock
    return FlowControl(ceiling, rpm, 60.0, clock=clock, cap=cap)


def learn(flow: FlowControl, seconds: float, steps: int = 5) -> None:
    for _ in range(steps):
        flow.began()
        flow.ended(seconds)


def test_unlimited_budget_or_a_number_is_the_ceiling() -> None:
    assert control(rpm=None, cap=AUTO_CAP).limit(0) == AUTO_CAP
    fixed = control(8)
    learn(fixed, 600.0)
    assert fixed.limit(0) == 8
    assert control(64, cap=32).limit(0) == 32  # a number never exceeds the cap


def test_jobs_shorter_than_the_window_keep_a_windows_worth_in_flight() -> None:
    flow = control()
    assert flow.limit(0) == 60  # nothing learned yet: the window's budget
    learn(flow, 15.0)
    assert flow.limit(0) == 60  # 15 s jobs: a minute's 60 submits fit in flight together
    assert control(cap=32).limit(0) == 32


def test_jobs_longer_than_the_window_follow_littles_law() -> None:
    flow = control()
    learn(flow, 240.0)  # a cold model: 4 minutes a job
    assert flow.limit(0) == 240  # one job a second, each in flight 240 s
    slow = control(rpm=10)
    learn(slow, 90.0)
    assert slow.limit(0) == 15


def test_the_cost_per_step_on_the_busiest_endpoint_divides_the_budget() -> None:
    flow = control()
    for _ in range(20):
        flow.began()
    flow.observe(Readings({SUBMIT: 20, STATUS: 40}), busy=20)  # two polls per job
    assert flow.limit(20) == 30
    flow.observe(Readings({SUBMIT: 20, STATUS: 10}), busy=20)  # polls are yet to come
    assert flow.limit(20) == 60


def test_a_429_halves_once_per_burst_and_calm_windows_grow_it_back() -> None:
    time = FakeTime()
    flow = control(time=time)
    flow.observe(Readings({}, throttled=1), busy=40)
    assert flow.limit(40) == 20
    time.now += 1.0
    flow.observe(Readings({}, throttled=3), busy=20)  # the same burst
    assert flow.limit(20) == 20
    time.now += 11.0
    flow.observe(Readings({}, throttled=4), busy=20)  # a new one: halve again
    assert flow.limit(20) == 10
    time.now += 59.0
    assert flow.limit(10) == 10  # not yet a calm window
    time.now += 1.0
    assert flow.limit(10) == 20
    time.now += 60.0
    assert flow.limit(20) == 40
    time.now += 60.0
    assert flow.limit(40) == 60  # back to the target, no longer held
    assert flow.halvings == 2


def test_a_storm_of_server_errors_halves_scattered_ones_do_not() -> None:
    time = FakeTime()
    flow = control(time=time)
    for n in range(1, 6):  # one 5xx every 40 s: never STORM within a window
        flow.observe(Readings({}, server_errors=n), busy=30)
        time.now += 40.0
    assert flow.limit(30) == 60
    flow.observe(Readings({}, server_errors=5 + STORM), busy=30)
    assert flow.limit(30) == 15


def test_readings_count_only_the_phase_and_only_limited_endpoints_requests() -> None:
    before = {SUBMIT: {"requests": 5, "rate_limited": 1, "server_errors": 0}}
    now = {SUBMIT: {"requests": 12, "rate_limited": 2, "server_errors": 1},
           STATUS: {"requests": 9, "rate_limited": 0, "server_errors": 2},
           "GET result link": {"requests": 7, "rate_limited": 0, "server_errors": 0}}
    found = readings_since(before, now, {SUBMIT, STATUS})
    assert found == Readings({SUBMIT: 7, STATUS: 9}, throttled=1, server_errors=3)


def test_the_gate_lets_in_no_more_than_the_limit_and_opens_on_leave() -> None:
    flow = Flow(FlowControl(2, None, 0.6), lambda: Readings({}))
    stop = threading.Event()
    assert flow.enter(stop) and flow.enter(stop)
    entered = threading.Event()
    third = threading.Thread(target=lambda: flow.enter(stop) and entered.set())
    third.start()
    third.join(timeout=0.3)
    assert not entered.is_set() and flow.busy == 2
    flow.leave(1.0)
    third.join(timeout=10)
    assert entered.is_set() and flow.busy == 2 and flow.peak == 2


def test_the_gate_refuses_once_the_run_stops() -> None:
    flow = Flow(FlowControl(1, None, 0.6), lambda: Readings({}))
    stop = threading.Event()
    assert flow.enter(stop)
    answer: list[bool] = []
    waiting = threading.Thread(target=lambda: answer.append(flow.enter(stop)))
    waiting.start()
    stop.set()
    waiting.join(timeout=10)
    assert answer == [False]
