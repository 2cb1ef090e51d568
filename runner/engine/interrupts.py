"""Ctrl-C and SIGTERM: the first stops new work and lets in-flight requests finish; a
second exits at once. Either way the state is consistent, because every checkpoint is its
own committed transaction."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runner.errors import EXIT_INTERRUPTED
from runner.events import EventKind, Reporter


@contextmanager
def graceful_interrupts(stop: threading.Event, reporter: Reporter) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread (tests, embedding)
        return

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            os.write(2, b"\nstopped at once; the state is consistent. Run again to resume.\n")
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        # Said from another thread: the signal may land while this (main) thread holds the
        # reporter's lock mid-line, and emitting here would then wait for itself forever.
        threading.Thread(target=reporter.emit, args=(EventKind.NOTICE,), daemon=True, kwargs={
            "message": "stopping: no new work; finishing requests in flight "
                       "(Ctrl-C again to stop at once)"}).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
