"""The job pacer's rules, given elapsed times (no clock, no sleeping)."""

from __future__ import annotations

import threading

from runner.engine.pacing import (
    EARLIER,
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
    assert job.first(0.0) == quantile(durations, QUANTILE) == 18.0
    assert job.first(3.0) == 15.0  # the job waited 3 s for a worker or the probe


def test_a_job_found_running_polls_at_the_remaining_durations_quantile() -> None:
    pacer = taught([float(d) for d in range(10, 20)])
    job = JobSchedule(pacer, is_probe=False)
    assert job.after_miss(16.0) == 3.0  # of 17, 18, 19: 19
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


def test_cadences_count_from_the_polls_sending() -> None:
    """A poll that took 0.3 s to answer: the next goes a cadence after it was sent."""
    probe = JobSchedule(JobPacer(1.0, None, 60.0), is_probe=True)
    assert probe.after_miss(1.3, took=0.3) == 0.7
    assert probe.after_miss(40.3, took=0.3) == 40.3 / 8 - 0.3
    pacer = taught([float(d) for d in range(10, 20)])
    job = JobSchedule(pacer, is_probe=False)
    assert job.after_miss(18.5, took=0.3) == 0.7  # the cadence, from the sending
    assert job.after_miss(16.0, took=0.3) == 3.0  # a duration's quantile is a moment: as is
    assert job.after_miss(40.0, took=0.5) == 9.5  # elapsed / 4, from the sending
    assert job.after_miss(1.0, took=5.0) >= 0.0


def test_durations_of_earlier_runs_start_the_pacer_without_a_probe() -> None:
    """Earlier runs recorded 10-19 s: every job's first poll is at their quantile, none
    probes; this run's durations join them and, being newer, displace them."""
    earlier = [float(d) for d in range(10, 20)]
    pacer = JobPacer(1.0, 60, 60.0, earlier=earlier)
    stop = threading.Event()
    jobs = [pacer.start(stop) for _ in range(3)]
    assert not any(j.is_probe for j in jobs)
    assert [j.first(0.0) for j in jobs] == [18.0] * 3
    many = JobPacer(1.0, 60, 60.0, earlier=[100.0] * 40 + [5.0] * EARLIER)
    assert many.start(stop).first(0.0) == 5.0  # only the newest EARLIER are kept
    for _ in range(64):
        many.finish(JobSchedule(many, is_probe=False), 7.0)
    assert many.start(stop).first(0.0) == 7.0


def test_polls_per_job_on_a_fake_clock_one_when_durations_are_known() -> None:
    """Jobs of 10-19 s, polled by their schedules on a fake clock: with a fresh pacer the
    probe's polls and the misses of the jobs that learned from it cost extra; started from
    an earlier run's durations, a batch of the same jobs costs about one poll each."""
    durations = [10.0 + (7 * n) % 10 for n in range(20)]

    def polls(pacer: JobPacer) -> float:
        """All 20 jobs submitted together; each poll answers at once."""
        stop = threading.Event()
        first = pacer.start(stop)
        if first.is_probe:  # the others wait for its duration
            _finish(pacer, first, durations[0])
        others = [pacer.start(stop) for _ in durations[1:]]
        if not first.is_probe:
            _finish(pacer, first, durations[0])
        for schedule, took in zip(others, durations[1:], strict=True):
            _finish(pacer, schedule, took)
        return pacer.polls / pacer.jobs

    fresh = polls(JobPacer(1.0, None, 60.0))
    known = polls(JobPacer(1.0, None, 60.0, earlier=durations))
    assert known <= 1.15 < fresh


def _finish(pacer: JobPacer, schedule: JobSchedule, took: float) -> None:
    """Poll ``schedule``'s job (done ``took`` seconds after its submission) on a fake clock."""
    now = schedule.first(0.0)
    while now < took:
        now += schedule.after_miss(now)
    pacer.finish(schedule, now)
