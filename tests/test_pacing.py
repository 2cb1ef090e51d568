"""The job pacer's rules, given elapsed times (no clock, no sleeping)."""

from __future__ import annotations

import threading

from runner.engine.pacing import (
    QUANTILE,
    STRETCH,
    JobPacer,
    JobSchedule,
    quantile,
    training_wait,
)


def taught(durations: list[float], *, min_interval: float = 1.0,
           usage: float = 0.0, rpm: int | None = 60) -> JobPacer:
    pacer = JobPacer(min_interval, rpm, 60.0, lambda: usage)
    for took in durations:
        pacer.finish(JobSchedule(pacer, is_probe=False), took)
    return pacer


def test_the_first_job_probes_and_the_others_wait_for_its_duration() -> None:
    pacer = JobPacer(1.0, 60, 60.0)
    stop = threading.Event()
    probe = pacer.start(stop)
    assert probe.is_probe and probe.first(0.0) == 1.0
    assert probe.after_miss(1.0) == 1.0 and probe.after_miss(40.0) == 5.0  # elapsed / 8
    later: list[JobSchedule] = []
    other = threading.Thread(target=lambda: later.append(pacer.start(stop)))
    other.start()
    other.join(timeout=0.2)
    assert not later  # waiting for the probe
    pacer.finish(probe, 12.0)
    other.join(timeout=10)
    assert later and not later[0].is_probe


def test_a_job_polls_first_when_most_jobs_are_done() -> None:
    durations = [float(d) for d in range(10, 20)]
    pacer = taught(durations)
    job = JobSchedule(pacer, is_probe=False)
    assert job.first(0.0) == quantile(durations, QUANTILE) == 16.0
    assert job.first(3.0) == 13.0  # the job waited 3 s for a worker or the probe


def test_a_job_found_running_polls_at_the_remaining_durations_quantile() -> None:
    pacer = taught([float(d) for d in range(10, 20)])
    job = JobSchedule(pacer, is_probe=False)
    assert job.after_miss(16.0) == 2.0  # of 17, 18, 19: 18
    assert job.after_miss(18.5) == 1.0  # only 19 is left: 0.5 s, but never under the cadence
    assert job.after_miss(40.0) == 10.0  # older than any job seen: elapsed / 4
    assert JobSchedule(pacer, is_probe=False).first(25.0) == 0.0  # likely done: look now


def test_a_learned_duration_is_the_middle_of_the_bracket() -> None:
    pacer = taught([])
    job = JobSchedule(pacer, is_probe=False)
    assert job.estimate(10.0) == 10.0  # found done at its first poll
    job.after_miss(10.0)
    assert job.estimate(14.0) == 12.0
    pacer.finish(job, 14.0)
    assert (pacer.polls, pacer.jobs) == (2, 1)


def test_a_busy_status_budget_spaces_every_jobs_polls() -> None:
    pacer = taught([10.0], usage=0.8, rpm=6)  # 0.1 polls a second for all jobs
    stop = threading.Event()
    jobs = [pacer.start(stop) for _ in range(3)]
    assert jobs[0].after_miss(11.0) == 30.0  # 3 jobs in flight / 0.1 per second
    idle = taught([10.0], usage=0.2, rpm=6)
    assert JobSchedule(idle, is_probe=False).after_miss(11.0) == 2.75


def test_training_without_history_is_looked_at_every_poll_every() -> None:
    assert training_wait(0.0, [], every=120.0, least=2.0) == 120.0
    assert training_wait(9000.0, [], every=120.0, least=2.0) == 120.0


def test_training_polls_sooner_as_the_expected_end_approaches() -> None:
    earlier = [3600.0, 4000.0, 4400.0]  # the median 4000 s: near the end, every 80 s
    assert training_wait(0.0, earlier, every=600.0, least=2.0) == 600.0
    assert training_wait(3000.0, earlier, every=600.0, least=2.0) == 420.0  # lands on 3420
    assert training_wait(3420.0, earlier, every=600.0, least=2.0) == 80.0
    assert training_wait(4400.0, earlier, every=600.0, least=2.0) == 80.0
    assert training_wait(6400.0, earlier, every=600.0, least=2.0) == 500.0  # overran 2000 s
    assert training_wait(9999.0, earlier, every=600.0, least=2.0) == 600.0
    assert training_wait(3500.0, [3600.0], every=600.0, least=100.0) == 100.0  # the cadence


def test_an_old_jobs_polls_spread_out_but_no_further_than_the_stretch() -> None:
    pacer = taught([10.0])
    assert JobSchedule(pacer, is_probe=False).after_miss(1000.0) == STRETCH * 1.0
    probe = JobSchedule(JobPacer(2.0, None, 60.0), is_probe=True)
    assert probe.after_miss(8.0) == 2.0 and probe.after_miss(10_000.0) == STRETCH * 2.0
