"""bria-run's benchmarks: ``python -m tests.benchmarks`` (``--smoke``, ``--only S1``).

Each scenario starts its own simulator in a separate process (``python -m runner
simulate``, then configured through ``POST /__sim/config``) so the simulator's CPU and
memory never count as bria-run's, and runs bria-run in a fresh child process
(``tests.benchmarks.worker``). Kept out of the normal test run: only the smoke variant
is exercised by ``tests/test_benchmarks_smoke.py``, without timing assertions.
"""
