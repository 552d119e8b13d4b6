"""A local webhook receiver: a real HTTP server that checks Standard Webhooks signatures with
the ``standardwebhooks`` library, as a newsroom's endpoint would.

It keeps every request (verified or not), answers 2xx unless answers are scripted
(``answer_next(503)``, ``answer_next(429, headers={"Retry-After": "3"})``, ``answer_next(410)``),
drawn at random with a seeded RNG (``fail_rate``: that share answered 503) or come from a rate
limit (``rate_limit=(20, 3.0)``: 20 requests per 3 seconds, then 429 with ``Retry-After``),
and drops a message whose ``webhook-id`` it already accepted (the spec's idempotency rule),
still answering 2xx. Another process can reset it with ``POST /_receiver/reset`` and read how
many messages it accepted with ``GET /_receiver/state``::

    with WebhookReceiver(SECRET) as receiver:
        ...
        assert [m.type for m in receiver.accepted] == ["article.published"]
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.standin_http import run_until_stopped, standalone_arguments


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        return str(self.payload.get("type"))


@dataclass
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class WebhookReceiver:
    """Verifies and records; see the module docstring."""

    def __init__(self, secret: str, *, host: str = "127.0.0.1", port: int = 0, fail_rate: float = 0.0,
                 rate_limit: tuple[int, float] | None = None, seed: int = 0) -> None:
        self._verifier = Webhook(secret)
        self._lock = threading.Lock()
        self.fail_rate = fail_rate
        self.rate_limit = rate_limit
        self._rng = random.Random(seed)
        self._window_start, self._window_calls = 0.0, 0
        self._script: list[_Answer] = []
        self.requests: list[Received] = []
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.receiver = self  # type: ignore[attr-defined]
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/news"

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_next(self, status: int, count: int = 1, *, headers: dict[str, str] | None = None,
                    body: bytes = b"") -> None:
        with self._lock:
            self._script.extend(_Answer(status, dict(headers or {}), body) for _ in range(count))

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self._window_start, self._window_calls = 0.0, 0

    @property
    def accepted(self) -> list[Received]:
        """Verified messages answered 2xx, once per ``webhook-id`` (the first), in order."""
        seen: dict[str, Received] = {}
        with self._lock:
            for r in self.requests:
                if r.verified and 200 <= r.status < 300:
                    seen.setdefault(r.webhook_id, r)
        return list(seen.values())

    def attempts_of(self, webhook_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.webhook_id == webhook_id]

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        if path == "/_receiver/reset" and method == "POST":
            self.reset()
            return _Answer(200, body=b"{}")
        try:
            self._verifier.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        with self._lock:
            answer = self._script.pop(0) if self._script else self._unscripted(verified)
            self.requests.append(Received(headers.get("webhook-id", ""), headers, body, verified, answer.status))
        return answer


    def _unscripted(self, verified: bool) -> _Answer:
        """401 for a bad signature; else 429 over the rate limit, a random 503, or 204 (under the lock)."""
        if not verified:
            return _Answer(401)
        if self.rate_limit is not None:
            limit, period = self.rate_limit
            now = time.time()
            if now - self._window_start >= period:
                self._window_start, self._window_calls = now, 0
            self._window_calls += 1
            if self._window_calls > limit:
                # Spec: RFC 9110 section 10.2.3, Retry-After as delay-seconds.
                wait = max(1, math.ceil(self._window_start + period - now))
                return _Answer(429, {"Retry-After": str(wait)}, b"Too Many Requests")
        if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
            return _Answer(503, body=b"Service Unavailable")
        return _Answer(204)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        receiver = self.server.receiver  # type: ignore[attr-defined]
        found = self.path.rstrip("/") == "/_receiver/state"
        body = json.dumps({"accepted": len(receiver.accepted), "requests": len(receiver.requests)}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if found else 0))
        self.end_headers()
        if found:
            self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self.server.receiver._handle("POST", self.path, headers, body)  # type: ignore[attr-defined]
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass



def main(argv: list[str] | None = None) -> None:
    """Run the receiver until SIGINT or SIGTERM; prints its URL (of the control routes' host)."""
    parser = standalone_arguments("python -m tests.support.webhook_receiver", 8093)
    parser.add_argument("--secret", required=True, help="the whsec_ secret the sender signs with")
    args = parser.parse_args(argv)
    run_until_stopped(WebhookReceiver(args.secret, host=args.host, port=args.port,  # type: ignore[arg-type]
                                      fail_rate=args.fail_rate, seed=args.seed))


if __name__ == "__main__":
    main()
