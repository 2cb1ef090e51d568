"""The simulator's socket server: one thread per connection, and the open connections known, so
a stopped simulator answers nobody (a restart test would prove nothing otherwise); and, for the
``refuse`` fault, a listening socket that stops listening for a while (new connections are
refused, as by a Bria briefly down) while the open connections are served on."""

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
        self.listening = threading.Event()
        self.listening.set()
        self.is_closed = False

    def refuse_for(self, seconds: float) -> None:
        """Refuse new connections for ``seconds`` (Linux: a listening socket shut for reading
        stops listening and may listen again). Connections already waiting to be accepted are
        accepted first, so none is reset with its request unread."""
        with self.open_lock:
            if self.is_closed or not self.listening.is_set():
                return
            self._accept_waiting()
            self.listening.clear()
            self.socket.shutdown(socket.SHUT_RD)
        timer = threading.Timer(seconds, self._listen_again)
        timer.daemon = True
        timer.start()

    def _accept_waiting(self) -> None:
        self.socket.setblocking(False)
        try:
            while True:
                try:
                    request, address = self.socket.accept()
                except (BlockingIOError, InterruptedError):
                    return
                request.setblocking(True)
                self.open.add(request)
                super().process_request(request, address)
        finally:
            self.socket.setblocking(True)

    def _listen_again(self) -> None:
        with self.open_lock:
            if self.is_closed:
                return
            with contextlib.suppress(OSError):  # an ephemeral port is let go by the shutdown
                self.socket.bind(self.server_address)
            self.socket.listen(self.request_queue_size)
            self.listening.set()

    def get_request(self) -> tuple[Any, Any]:
        if not self.listening.is_set():  # the shut socket reads as ready: wait, do not spin
            self.listening.wait(0.05)
            raise OSError("not listening")  # socketserver takes it as nothing to accept
        return super().get_request()

    def server_close(self) -> None:
        with self.open_lock:
            self.is_closed = True
        super().server_close()

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
