"""The simulator's HTTP server: Bria's paths on loopback, with rate limits and faults.

One request goes: count it -> 401 without the right ``api_token`` -> 429 over the
endpoint's per-window limit -> injected faults (429 storm, 5xx) -> latency (slept
outside the world lock) -> a retired legacy route's answer (``retired.py``) -> the
body checked against its operation's schema (``schemas.py``: 400 on a departure, unknown
fields counted) -> the world operation under the lock -> save when persisted -> answer,
or drop the connection (lost answer, mid-response drop). Which request meets which fault is
drawn in ``faults.py``, which also says where each falls against the work.
Paths under ``/__sim/`` are the simulator's own: stats, config, result links (the
"CDN") and uploaded-image files; they need no token and are not rate limited.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from runner.simulator import hostile, jobs, persist
from runner.simulator.answers import SimError, message, v2_error
from runner.simulator.config import SimConfig
from runner.simulator.faults import Faults
from runner.simulator.ratelimit import SlidingWindow
from runner.simulator.render import ResultCache
from runner.simulator.retired import retired_answer
from runner.simulator.routes import Route, find
from runner.simulator.schemas import nested_counts, refusal, shortened, unknown_fields
from runner.simulator.sockets import Server
from runner.simulator.world import World

MAX_BODY = 64 * 1024 * 1024  # larger than any legal request (12 MB image as base64)


class Simulator:
    """A faithful fake Bria on loopback. ``start()`` serves in daemon threads."""

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.config = config or SimConfig()
        self.world: World = persist.open_world(self.config)
        self.world_id = self.world.world_id
        self.lock = threading.RLock()  # around the world and the fault generator
        self.limiter = SlidingWindow()
        self.results = ResultCache()
        self.calls: Counter[str] = Counter()
        self.links: Counter[str] = Counter()
        self.rate_limited = 0
        self.faults = Faults(self.config)
        self.unknown: Counter[tuple[str, str]] = Counter()  # (operation, field) -> times
        self.departures: Counter[str] = Counter()  # bodies refused by the schema check
        self.requests: list[tuple[str, dict[str, Any]]] = []  # with record_requests
        self._address = (host, port)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._server = Server(self._address, _Handler)
        self._server.sim = self
        self.world.base_url = self.base_url
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="bria-simulator")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def configure(self, **changes: Any) -> None:
        """Change faults and timings while serving (also ``POST /__sim/config``)."""
        with self.lock:
            self.config.update(changes)
            if "seed" in changes:
                self.faults.reseed()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            accounts = self.world.accounts
            kinds = ("projects", "datasets", "images", "models", "trainings_started",
                     "generation_jobs")
            return {
                "world_id": self.world_id,
                "calls": dict(sorted(self.calls.items())),
                "rate_limited": self.rate_limited,
                "credits": accounts.credits,
                "created": {kind: accounts.created.get(kind, 0) for kind in kinds},
                "duplicates": accounts.duplicates(),
                "links": dict(sorted(self.links.items())),
                "faults": self.faults.totals(),
                "fault_routes": self.faults.by_route(),
                "unknown_fields": nested_counts(self.unknown),
                "schema_departures": dict(sorted(self.departures.items())),
            }

    # --- used by the handler --------------------------------------------------------------

    def admit(self, route_key: str) -> int | None:
        config = self.config
        wait = self.limiter.admit(route_key, config.clock(), config.rpm, config.rate_window)
        if wait is not None:
            with self.lock:
                self.rate_limited += 1
        return wait

    def screen(self, route: Route, body: dict[str, Any]) -> SimError | None:
        """Before the world: record the body, count its unknown fields, answer a retired
        legacy route, refuse a body that departs from the operation's schema."""
        with self.lock:
            if self.config.record_requests:
                self.requests.append((route.key, shortened(body)))
            self.unknown.update((route.key, name) for name in unknown_fields(route.key, body))
            retired = retired_answer(self.config.retire_legacy, route.key, body)
        refused = retired or refusal(route.key, body, is_v2=route.is_v2)
        if refused is not None and retired is None:
            with self.lock:
                self.departures[route.key] += 1
        return refused

    def run(self, route: Route, ident: str, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            try:
                status, answer = route.handler(self.world, ident, body)
            except SimError as error:
                return error.status, error.body
            if route.is_mutating and self.config.persist_path is not None:
                persist.save(self.world, self.config.persist_path)
            return status, answer

    def result_link(self, request_id: str) -> tuple[int, bytes]:
        with self.lock:
            status, job = jobs.link(self.world, request_id)
            spec = jobs.render_spec(self.world, job) if job is not None else None
        if spec is None:
            return status, b""
        return 200, self.results.get(spec)  # rendered outside the world lock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    server: Server
    timeout = 60  # an idle keep-alive connection is closed after this
    # Headers and body go out as two writes; with Nagle on, the client's delayed ACK
    # would add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator's output is its stats, not an access log."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        self.is_last = False
        raw = self._read_body()
        if raw is None:
            return
        if path.startswith("/__sim/"):
            self._sim_path(method, path, raw)
        else:
            self._api(method, path, raw)
        if self.is_last:
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"message": "Payload too large"}, close=True)
            return None
        return self.rfile.read(length) if length else b""

    # --- Bria's API -------------------------------------------------------------------

    def _api(self, method: str, path: str, raw: bytes) -> None:
        sim = self.server.sim
        route, ident, other_method = find(method, path)
        key = route.key if route else f"{method} {path}"
        with sim.lock:
            sim.calls[key] += 1
        is_v2 = path.startswith("/v2/")
        if self.headers.get("api_token") != sim.config.token:
            error = v2_error(401, "Unauthorized") if is_v2 else message(401, "Unauthorized")
            return self._send(error.status, error.body)
        wait = sim.admit(key)
        fate = sim.faults.draw(method, path, raw, key)
        if fate.refuse:  # Bria stops taking connections, before this answer is out
            self.is_last = True  # and this connection closes after it
            self.server.refuse_for(sim.config.refuse_seconds)
        if wait is not None or fate.storm:
            return self._too_many(wait or 1, is_v2)
        if fate.fail is not None and not fate.fails_after_the_work:
            return self._send(fate.fail, _server_error(fate.fail, is_v2))
        if fate.drop == "before":
            return self._drop()  # the request was read; nothing is done
        self._sleep_latency(key)
        if route is None:
            status = 405 if other_method else 404
            return self._send(status, {"message": "Method Not Allowed" if other_method
                                       else "Not Found"})
        status, answer = self._process(route, ident, raw)
        if fate.fail is not None:  # a gateway's 504: it gave up waiting; the work is done
            return self._send(fate.fail, _server_error(fate.fail, is_v2))
        if fate.lost:
            return self._drop()
        if hostile.serve_api(self, sim.config, key, answer):  # test-only bound attacks
            return None
        self._send(status, answer, drop_midway=fate.drop == "after")

    def _process(self, route: Route, ident: str, raw: bytes) -> tuple[int, Any]:
        body: Any = {}
        if route.method in ("POST", "PUT") and raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                error = v2_error(400, "Invalid JSON body") if route.is_v2 else message(
                    400, "Invalid JSON body: expected an object")
                return error.status, error.body
        refused = self.server.sim.screen(route, body) if route.is_mutating else None
        if refused is not None:
            return refused.status, refused.body
        return self.server.sim.run(route, ident, body)

    def _sleep_latency(self, key: str) -> None:
        config = self.server.sim.config
        delay = config.latency + config.latency_by_endpoint.get(key, 0.0)
        if delay > 0:
            time.sleep(delay)  # outside the world lock: slow requests overlap

    def _too_many(self, wait: int, is_v2: bool) -> None:
        text = "Request limit exceeded. Please try again later."
        body = v2_error(429, text).body if is_v2 else {"message": text}
        self._send(429, body, headers={"Retry-After": str(wait)})

    # --- the simulator's own paths ------------------------------------------------------

    def _sim_path(self, method: str, path: str, raw: bytes) -> None:
        sim = self.server.sim
        if path == "/__sim/stats" and method == "GET":
            return self._send(200, sim.stats())
        if path == "/__sim/config" and method == "POST":
            try:
                sim.configure(**json.loads(raw or b"{}"))
            except (ValueError, TypeError) as exc:
                return self._send(400, {"message": str(exc)})
            return self._send(200, sim.config.public())
        if path.startswith("/__sim/results/") and method == "GET":
            return self._result(path.removeprefix("/__sim/results/").removesuffix(".png"))
        if path.startswith("/__sim/files/images/") and method == "GET":
            return self._thumbnail(path.removeprefix("/__sim/files/images/").removesuffix(".png"))
        self._send(404, {"message": "Not Found"})

    def _result(self, request_id: str) -> None:
        sim = self.server.sim
        with sim.lock:
            sim.links["GET /__sim/results/{id}"] += 1
        drop = sim.faults.draw("GET", self.path, b"", "GET /__sim/results/{id}", is_link=True).drop
        if drop == "before":
            return self._drop()
        status, data = sim.result_link(request_id)
        if status == 403:
            xml = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            return self._raw(403, xml, "application/xml")
        if status != 200:
            return self._raw(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        if hostile.serve_result(self, sim.config, data):  # test-only bound attacks
            return None
        self._ranged(data, drop == "after")

    def _ranged(self, data: bytes, drop: bool) -> None:
        """Serve ``data`` honouring a single ``Range: bytes=a-b`` (206), as S3 does."""
        spec = (self.headers.get("Range") or "").removeprefix("bytes=")
        if not spec or "," in spec or "-" not in spec:
            return self._raw(200, data, "image/png", drop_midway=drop)
        first, _, last = spec.partition("-")
        start = int(first) if first else max(0, len(data) - int(last or 0))
        end = min(int(last), len(data) - 1) if first and last else len(data) - 1
        if start >= len(data) or start > end:
            return self._raw(416, b"", "image/png", {"Content-Range": f"bytes */{len(data)}"})
        headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"}
        self._raw(206, data[start:end + 1], "image/png", headers, drop_midway=drop)

    def _thumbnail(self, image_id: str) -> None:
        sim = self.server.sim
        with sim.lock:
            record = sim.world.images.get(int(image_id)) if image_id.isdigit() else None
        if record is None:
            return self._raw(404, b"", "image/png")
        self._raw(200, record.thumbnail, "image/png")

    # --- writing answers ----------------------------------------------------------------

    def _send(self, status: int, body: Any, *, headers: dict[str, str] | None = None,
              drop_midway: bool = False, close: bool = False) -> None:
        data = b"" if status == 204 or body is None else json.dumps(body).encode()
        self._raw(status, data, "application/json", headers, drop_midway=drop_midway,
                  close=close)

    def _raw(self, status: int, data: bytes, content_type: str,
             headers: dict[str, str] | None = None, *, drop_midway: bool = False,
             close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close or self.is_last:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if drop_midway:
            self.wfile.write(data[: len(data) // 2])
            return self._drop()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the socket without (the rest of) an answer."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _server_error(status: int, is_v2: bool) -> Any:
    text = {500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
            504: "Gateway timeout"}[status]
    return v2_error(status, text).body if is_v2 else {"message": text}
