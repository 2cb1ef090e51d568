"""The command line: parse, call the library, format, map errors to exit codes.

This package is the only importer of click: ``base`` holds the group, the error exits and the
shared options; ``run``, ``files`` (validate, schema, plan, status, outputs, gallery) and
``manage`` (unlock, clean, simulate) add their commands to it. Heavy modules (httpx,
SQLAlchemy, rich, the simulator) are imported inside the commands that need them, so
`bria-run validate` and `bria-run --help` start fast.

Exit codes: 0 ok, 1 runtime failure, 2 invalid input, 130 interrupted.
"""

from runner.cli import files, manage, run  # noqa: F401  (each registers its commands)
from runner.cli.base import main

__all__ = ["main"]
