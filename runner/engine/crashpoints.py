"""Named boundaries where a test may have bria-run killed, or fail (test-only hook).

``BRIA_RUN_CRASH_AT`` holds ``boundary[:op][@n][=fault]``, for instance
``after_send:create_dataset`` or ``after_record:upload_image@3``: when the engine reaches that
boundary for the n-th time (default the first), the process SIGKILLs itself, exactly as a
crash would. The crash suite uses it to prove that every boundary is safe to die at. With a
fault, the boundary raises instead of killing: ``=assert`` an AssertionError (a bug in
bria-run or a library), ``=enospc`` an OSError(ENOSPC) (a full disk); the fail-loud suite
uses them to prove that no exception goes unnoticed. Unset, it costs one string comparison
per boundary.

Boundaries: ``before_intent``, ``after_intent`` (intent committed, request not sent),
``after_send`` (answer received, not recorded), ``after_record``, ``training`` (each
training poll), ``download`` (part of a result written to the temp file).
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "BRIA_RUN_CRASH_AT"


def _assert() -> BaseException:
    return AssertionError("injected by BRIA_RUN_CRASH_AT")


def _enospc() -> BaseException:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


FAULTS = {"assert": _assert, "enospc": _enospc}


class CrashPoints:
    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get(ENV, "") if spec is None else spec
        spec, _, self.fault = spec.partition("=")
        if self.fault and self.fault not in FAULTS:
            raise ValueError(f"{ENV}: unknown fault {self.fault!r} (one of {', '.join(FAULTS)})")
        target, _, count = spec.partition("@")
        self.boundary, _, self.op = target.partition(":")
        self.remaining = int(count) if count else 1
        self.is_armed = bool(self.boundary)

    def reach(self, boundary: str, op: str = "") -> None:
        if not self.is_armed or boundary != self.boundary or (self.op and op != self.op):
            return
        self.remaining -= 1
        if self.remaining == 0 and self.fault:
            raise FAULTS[self.fault]()
        if self.remaining <= 0 and not self.fault:
            os.kill(os.getpid(), signal.SIGKILL)
