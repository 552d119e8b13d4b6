"""What the Mastodon and Bluesky stand-ins share: a threaded local HTTP server, a request log,
scripted faults, a rate-limit window and the control API (``GET /_standin/state``,
``POST /_standin/reset``, ``POST /_standin/faults``).

A subclass says how its service authenticates, routes, words its errors and its rate-limit
headers; see ``MastodonStandIn`` and ``BlueskyStandIn``.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
from email.parser import BytesParser
from email.policy import default
import random
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the stand-in read it: ``query`` and form ``body`` as lists per key
    (Mastodon.py sends ``account_ids[]`` repeated), a JSON body as parsed, raw bytes else."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        """One value from the query or a form body."""
        for source in (self.query, self.body if isinstance(self.body, dict) else {}):
            value = source.get(name)
            if isinstance(value, list):
                return str(value[0]) if value else default
            if value is not None:
                return str(value)
        return default


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    status: int
    headers: dict[str, str]


@dataclass
class Scripted:
    """A canned answer for the next request matching ``method`` and ``path`` (a prefix).
    ``drop`` closes the connection unanswered; ``handle_first`` lets the request take effect
    before the canned answer (the client cannot know it worked)."""

    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None
    drop: bool = False
    handle_first: bool = False
    raw: bytes | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or path.startswith(self.path))


class LocalServer:
    """A threaded HTTP server on a local port, served from a background thread: ``url``,
    ``start``/``stop`` and a context manager, a lock, and a queue of scripted answers that
    each take the first request they match. ``handler`` reaches this object as
    ``self.server.standin``."""

    name = "standin"

    def __init__(self, *, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self._lock = threading.RLock()
        self._script: deque[Any] = deque()
        self._server = QuietServer((host, port), handler)
        self._server.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Any:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_scripted(self, method: str, path: str) -> Any:
        """The first queued answer that matches (``entry.matches(method, path)``), taken off the queue."""
        with self._lock:
            for i, entry in enumerate(self._script):
                if entry.matches(method, path):
                    del self._script[i]
                    return entry
        return None


    def _control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """``GET /_standin/state``; ``POST /_standin/reset``; ``POST /_standin/faults`` with
        ``{"kind": "fail", "count": 2, "status": 503}``, ``{"kind": "rate_limit", "reset_at": ...}``,
        ``{"kind": "drop"}`` or a kind ``_more_faults`` knows (optional ``method`` and ``path``
        narrow which request is hit). Not part of any service's API."""
        if method == "GET" and path == "/_standin/state":
            return 200, self.snapshot()
        if method == "POST" and path == "/_standin/reset":
            self.reset()
            return 200, {"reset": True}
        if method != "POST" or path != "/_standin/faults" or not isinstance(body, dict):
            return 404, self.error_body(404, f"no control route {method} {path}")
        where = {"method": body.get("method"), "path": body.get("path")}
        kind, count = body.get("kind"), int(body.get("count", 1))
        if kind == "fail":
            self.fail_next(count, int(body.get("status", 503)), **where)
        elif kind == "rate_limit":
            self.rate_limit_next(body.get("reset_at"), **where)
        elif kind == "drop":
            self.drop_next(count, **where)
        elif not self._more_faults(kind, count, where, body):
            return 400, self.error_body(400, f"unknown fault kind {kind!r}")
        return 200, {"queued": kind}

    def _more_faults(self, kind: Any, count: int, where: dict[str, Any], body: dict[str, Any]) -> bool:
        """Queue a fault kind of this stand-in's own; False when it knows none by that name."""
        return False

    # Each stand-in has these; the control API uses them.
    def fail_next(self, count: int = 1, status: int = 503, **kwargs: Any) -> None:
        raise NotImplementedError

    def rate_limit_next(self, reset_at: int | None = None, **kwargs: Any) -> int:
        raise NotImplementedError

    def drop_next(self, count: int = 1, **kwargs: Any) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        raise NotImplementedError


def run_until_stopped(standin: LocalServer) -> None:
    """Serve ``standin`` in the foreground (a stand-in run as its own process): print its URL,
    stop on SIGINT or SIGTERM."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with standin:
        print(standin.url, flush=True)
        while not stopping.wait(0.5):
            pass


def standalone_arguments(prog: str, port: int) -> argparse.ArgumentParser:
    """The options every stand-in takes when run as its own process."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 503")
    parser.add_argument("--seed", type=int, default=0)
    return parser


class StandInServer(LocalServer):
    """Faults, rate-limit window, control API and dispatch; subclasses implement ``authorize``,
    ``route``, ``error_body``, ``rate_limit_headers``, ``snapshot`` and ``clear``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, seed: int = 0, fail_rate: float = 0.0,
                 rate_limit: tuple[int, float] | None = None) -> None:
        super().__init__(host=host, port=port, handler=_Handler)
        self.fail_rate = fail_rate
        self.rate_limit = rate_limit
        self._rng = random.Random(seed)
        self._window_start = 0.0
        self._window_calls = 0
        self.requests: list[Logged] = []

    # -- faults --------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 503, *, method: str | None = None, path: str | None = None,
                  headers: dict[str, str] | None = None, body: Any = None, raw: bytes | None = None,
                  handle_first: bool = False) -> None:
        """The next ``count`` matching requests get ``status`` with the service's error body
        (or ``body``, or ``raw`` bytes that are not JSON at all)."""
        body = body if body is not None else self.error_body(status, "scripted failure")
        with self._lock:
            for _ in range(count):
                self._script.append(Scripted(status, body, dict(headers or {}), method, path,
                                             handle_first=handle_first, raw=raw))

    def rate_limit_next(self, reset_at: int | None = None, *, method: str | None = None,
                        path: str | None = None) -> int:
        """The next matching request gets a 429 saying the window resets at ``reset_at``
        (epoch seconds; default 5 minutes ahead). Returns the reset time used."""
        reset_at = reset_at if reset_at is not None else int(time.time()) + 300
        self.fail_next(1, 429, method=method, path=path, headers=self.rate_limit_headers(300, 0, reset_at),
                       body=self.error_body(429, "Too many requests"))
        return reset_at

    def drop_next(self, count: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next ``count`` matching requests get no answer: the connection is closed."""
        with self._lock:
            for _ in range(count):
                self._script.append(Scripted(method=method, path=path, drop=True))

    def reset(self) -> None:
        """No posts, logged requests or queued faults, a fresh rate-limit window."""
        with self._lock:
            self._script.clear()
            self._window_start, self._window_calls = 0.0, 0
            self.requests.clear()
            self.clear()

    def count(self, method: str, path: str) -> int:
        """How many requests ``method path`` (a prefix) received."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and r.path.startswith(path))

    # -- for subclasses ------------------------------------------------------------------

    def authorize(self, request: Request) -> tuple[int, Any] | None:
        """An error answer when the request's credentials are refused, else None."""
        raise NotImplementedError

    def route(self, request: Request) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def rate_limit_headers(self, limit: int, remaining: int, reset_at: int) -> dict[str, str]:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    # -- dispatch (server threads) -------------------------------------------------------

    def _window(self) -> dict[str, str]:
        """Count the call against the rate-limit window; its headers (``over`` when exhausted)."""
        if self.rate_limit is None:
            return {}
        limit, period = self.rate_limit
        with self._lock:
            now = time.time()
            if now - self._window_start >= period:
                self._window_start, self._window_calls = now, 0
            self._window_calls += 1
            headers = self.rate_limit_headers(limit, max(limit - self._window_calls, 0),
                                              math.ceil(self._window_start + period))
            return {**headers, "over": "1"} if self._window_calls > limit else headers

    def _roll(self) -> bool:
        with self._lock:
            return self.fail_rate > 0 and self._rng.random() < self.fail_rate

    def serve(self, handler: "_Handler") -> None:
        request = _read(handler)
        if request.path.startswith("/_standin/"):
            handler.send_json(*self._control(request.method, request.path, request.body), {})
            return

        def answer(status: int, payload: Any, headers: dict[str, str] | None = None, *, drop: bool = False,
                   raw: bytes | None = None) -> None:
            with self._lock:
                self.requests.append(Logged(request.method, request.path, 0 if drop else status, request.headers))
            if drop:
                handler.close_connection = True
                return
            handler.send_json(status, payload, headers or {}, raw=raw)

        refused = self.authorize(request)
        if refused is not None:
            answer(*refused)
            return
        scripted = self._next_scripted(request.method, request.path)
        if scripted is not None:
            if scripted.handle_first:
                self.route(request)
            answer(scripted.status, scripted.body, scripted.headers, drop=scripted.drop, raw=scripted.raw)
            return
        window = self._window()
        if window.pop("over", None):
            answer(429, self.error_body(429, "Too many requests"), window)
            return
        if self._roll():
            answer(503, self.error_body(503, "Service Unavailable"), window)
            return
        status, payload, *more = self.route(request)
        answer(status, payload, {**window, **(more[0] if more else {})})


def _read(handler: BaseHTTPRequestHandler) -> Request:
    parts = urlsplit(handler.path)
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    ctype = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    body: Any = raw
    if ctype == "application/json" and raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
    elif ctype == "application/x-www-form-urlencoded":
        body = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    elif ctype == "multipart/form-data":
        body = _multipart(raw, handler.headers.get("Content-Type") or "")
    headers = {k.lower(): v for k, v in handler.headers.items()}
    path = parts.path.rstrip("/") or "/"
    return Request(handler.command, path, parse_qs(parts.query, keep_blank_values=True), headers, body, raw)


def _multipart(raw: bytes, content_type: str) -> dict[str, list[Any]]:
    """A multipart form as lists per field: text for plain fields, ``(bytes, MIME type)`` for files."""
    message = BytesParser(policy=default).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    form: dict[str, list[Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        value = (data, part.get_content_type()) if part.get_filename() else data.decode("utf-8", "replace")
        form.setdefault(str(name), []).append(value)
    return form


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    verbose = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, dropped connection) is part of the game here.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    """Answers with JSON (or given raw bytes); quiet unless the server is ``verbose``.
    Subclasses route ``do_*`` to their stand-in."""

    def send_json(self, status: int, payload: Any, headers: dict[str, str], *, raw: bytes | None = None) -> None:
        body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)  # also sends Date, which Mastodon.py reads against X-RateLimit-Reset
        self.send_header("Content-Type", "application/json; charset=utf-8" if raw is None else "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if getattr(self.server, "verbose", False):
            sys.stderr.write(f"{self.server.standin.name}: " + format % args + "\n")  # type: ignore[attr-defined]


class _Handler(JsonHandler):
    protocol_version = "HTTP/1.1"

    def _dispatch(self) -> None:
        self.server.standin.serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch
