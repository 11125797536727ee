"""Local stand-ins, on loopback only, for what sits around the health function in AWS, each with
the numbers infra-global/dns.yaml and template.yaml give it (test harness: nothing here is in
src/, and no library emulates CloudFront or a Lambda URL's concurrency cap):

- `FunctionUrl`: the real health handler behind an HTTP server, at most `concurrency` requests
  at once (HealthReservedConcurrency); one more is throttled with 429, as Lambda answers. Each
  invocation also pays Lambda's own per-request overhead (`overhead` seconds).
- `Edge`: a CloudFront distribution with the health cache policy: every answer (errors too) kept
  `ttl` seconds by path, concurrent misses collapsed into one origin request.
- `Checker`: a Route 53 HTTPS_STR_MATCH health checker: a probe passes on a 2xx/3xx status with
  the search string in the first 5,120 bytes; FailureThreshold consecutive failures make it
  report the endpoint unhealthy.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[dict[str, Any]], dict[str, Any]]
LOOPBACK = "127.0.0.1"


def url_event(method: str, path: str) -> dict[str, Any]:
    """A Function URL (payload 2.0) event, as Lambda would build it from the request."""
    return {
        "version": "2.0",
        "rawPath": path,
        "headers": {},
        "requestContext": {"http": {"method": method, "path": path, "userAgent": "flood"}},
        "isBase64Encoded": False,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[_Server, threading.Thread]:
    server = _Server((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        return None

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@dataclass
class FunctionUrl:
    respond: Respond
    concurrency: int
    overhead: float = 0.02
    invocations: int = 0
    throttled: int = 0
    _slots: threading.BoundedSemaphore = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.concurrency)
        outer = self

        class Handler(_Quiet):
            def do_GET(self) -> None:  # noqa: N802 - stdlib's name
                outer.handle(self)

            do_HEAD = do_GET  # noqa: N815

        self._server, self._thread = _serve(Handler)
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def handle(self, request: _Quiet) -> None:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self.throttled += 1
            request.reply(429, b'{"Message":"Rate Exceeded."}')
            return
        try:
            with self._lock:
                self.invocations += 1
            time.sleep(self.overhead)
            response = self.respond(url_event(request.command, request.path))
            request.reply(
                response["statusCode"], response["body"].encode(), response.get("headers")
            )
        finally:
            self._slots.release()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Edge:
    origin: str
    ttl: float
    origin_requests: int = 0
    _cache: dict[str, tuple[float, int, bytes]] = field(default_factory=dict)
    _fetching: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        outer = self

        class Handler(_Quiet):
            def do_GET(self) -> None:  # noqa: N802 - stdlib's name
                status, body = outer.get(self.path)
                self.reply(status, body)

            do_HEAD = do_GET  # noqa: N815

        self._server, self._thread = _serve(Handler)
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def get(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            fetching = self._fetching.setdefault(path, threading.Lock())
        with fetching:  # concurrent misses wait for the one origin request
            cached = self._cache.get(path)
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1], cached[2]
            status, body = fetch(self.origin + path)
            with self._lock:
                self.origin_requests += 1
            self._cache[path] = (time.monotonic(), status, body)
            return status, body

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def fetch(url: str, timeout: float = 4.0) -> tuple[int, bytes]:
    """Status and body; an HTTP error status is an answer, a connection failure is 599."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status), bytes(response.read(5120))
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read(5120))
    except (urllib.error.URLError, OSError):
        return 599, b""


@dataclass
class Checker:
    """One Route 53 checker probing `url` (HTTPS_STR_MATCH semantics, its FailureThreshold)."""

    url: str
    search: str
    failure_threshold: int
    probes: int = 0
    failures: int = 0
    worst_streak: int = 0
    _streak: int = 0

    def probe(self) -> bool:
        status, body = fetch(self.url, timeout=2.0)  # Route 53 waits 2 s for the answer
        passed = 200 <= status < 400 and self.search.encode() in body
        self.probes += 1
        self._streak = 0 if passed else self._streak + 1
        self.failures += 0 if passed else 1
        self.worst_streak = max(self.worst_streak, self._streak)
        return passed

    @property
    def ever_unhealthy(self) -> bool:
        return self.worst_streak >= self.failure_threshold


class Flood:
    """`clients` concurrent clients sending requests to `url` back to back, from the moment all
    of them are running (a barrier) until the block ends."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.sent = [0] * clients
        self._stop = threading.Event()
        self._ready = threading.Barrier(clients + 1)
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def _client(self, index: int) -> None:
        self._ready.wait()
        while not self._stop.is_set():
            fetch(self.url, timeout=5.0)
            self.sent[index] += 1

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        self._ready.wait()  # every client is running
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
