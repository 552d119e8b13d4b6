"""A real WebSub hub for integration tests: Flask-WebSub's ``Hub``, run in its own process.

    python -m tests.support.websub_hub PORT DATA_DIR     (the hub, and its Celery worker process)

The hub is Flask-WebSub's own code (subscription with intent verification, fetching the
topic, checking its ``Link: rel="hub"`` and ``rel="self"`` headers, distributing the content
to each subscriber). Around it, for the tests, a thin WSGI layer:

* ``POST /control/fail-next?n=N``: the next N publish requests are answered 503 before they
  reach the hub (a hub in trouble);
* ``GET /control/pings``: every publish request seen, ``[{"topic": ..., "status": ...}]``.

Flask-WebSub runs its work as Celery tasks. They run as they would in production: in a real
``celery worker`` process the hub starts beside itself, on kombu's filesystem transport under
DATA_DIR (no broker server to run). Start the hub in a session of its own and kill the group.
Publishing is enabled (``PUBLISH_SUPPORTED``), as its documentation says for testing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from celery import Celery
from flask import Flask
from flask_websub.hub import Hub, SQLite3HubStorage
from werkzeug.serving import run_simple


class Control:
    """The test layer around the hub's WSGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fail_next = 0
        self.pings: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/control/fail-next" and method == "POST":
            with self.lock:
                self.fail_next = int(parse_qs(environ.get("QUERY_STRING", "")).get("n", ["1"])[0])
            return self._answer(start_response, "204 No Content", b"")
        if path == "/control/pings":
            with self.lock:
                body = json.dumps(self.pings).encode()
            return self._answer(start_response, "200 OK", body, "application/json")
        if path == "/hub" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length)
            form = parse_qs(raw.decode())
            if form.get("hub.mode") == ["publish"]:
                with self.lock:
                    failing = self.fail_next > 0
                    self.fail_next -= failing
                    self.pings.append({"topic": (form.get("hub.topic") or form.get("hub.url") or [""])[0],
                                       "url": (form.get("hub.url") or [""])[0], "status": 503 if failing else 202})
                if failing:
                    return self._answer(start_response, "503 Service Unavailable", b"try again\n")
            environ["wsgi.input"] = _Replay(raw)
        return self.app(environ, start_response)

    @staticmethod
    def _answer(start_response: Any, status: str, body: bytes, media: str = "text/plain") -> list[bytes]:
        start_response(status, [("Content-Type", media), ("Content-Length", str(len(body)))])
        return [body]


class _Replay:
    """The request body again, for the hub, after the control layer read it."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else self.at + size
        chunk, self.at = self.data[self.at:end], min(end, len(self.data))
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def build(data_dir: Path) -> tuple[Control, Celery]:
    """The hub's WSGI app and its Celery app; built the same in the hub and in its worker, so
    both name the tasks alike."""
    queue = data_dir / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    celery = Celery("websub_hub", broker="filesystem://")
    celery.conf.update(broker_transport_options={"data_folder_in": str(queue), "data_folder_out": str(queue),
                                                 "polling_interval": 0.05})
    app = Flask("websub_hub")
    app.config["PUBLISH_SUPPORTED"] = True
    hub = Hub(SQLite3HubStorage(str(data_dir / "hub.sqlite3")), celery, REQUEST_TIMEOUT=5, BACKOFF_BASE=0.1)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    return Control(app), celery


def main() -> None:
    if sys.argv[1] == "worker":
        _, celery = build(Path(sys.argv[2]))
        celery.worker_main(["worker", "--pool=solo", "--loglevel=WARNING", "--without-mingle", "--without-gossip",
                            "--without-heartbeat"])
        return
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    data_dir.mkdir(parents=True, exist_ok=True)
    control, _ = build(data_dir)
    worker = subprocess.Popen([sys.executable, "-m", "tests.support.websub_hub", "worker", str(data_dir)])
    try:
        run_simple("127.0.0.1", port, control, threaded=True)
    finally:
        worker.terminate()


if __name__ == "__main__":
    main()
