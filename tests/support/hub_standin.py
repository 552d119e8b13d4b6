"""A WebSub hub stand-in for unit tests: a local HTTP server that real ``requests`` talks to.

(Integration tests use a real hub, Flask-WebSub's: tests/support/websub_hub.py.)
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


class Hub:
    """A hub stand-in on 127.0.0.1: records each publish form, answers the next scripted status."""

    def __init__(self) -> None:
        self.forms: list[list[tuple[str, str]]] = []
        self.answers: list[int] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                hub.forms.append(parse_qsl(self.rfile.read(length).decode()))
                status = hub.answers.pop(0) if hub.answers else 202
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def topics(self) -> list[str]:
        return [dict(form)["hub.url"] for form in self.forms]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
