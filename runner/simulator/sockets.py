"""The simulator's socket server: one thread per connection, and the open connections known, so
a stopped simulator answers nobody (a restart test would prove nothing otherwise)."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.simulator.server import Simulator


class Server(ThreadingHTTPServer):
    """Threads per connection, a deep accept queue, and the open connections known so a stop
    can cut them."""

    daemon_threads = True
    request_queue_size = 256  # the default (5) refuses bursts of concurrent connections
    allow_reuse_address = True
    sim: Simulator

    def server_activate(self) -> None:
        super().server_activate()
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """A stopped Bria answers nobody: cut the keep-alive connections still open."""
        with self.open_lock:
            for connection in list(self.open):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (killed, timed out) is normal here, not a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)
