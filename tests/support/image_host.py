"""A local web server playing the site's image host: good images, and every way an image
can break the rules (wrong type, too large, slow, redirected elsewhere)."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 1000


class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        port = self.server.server_address[1]
        routes = {
            "/ok.png": (200, {"Content-Type": "image/png"}, PNG),
            "/page": (200, {"Content-Type": "text/html"}, b"<html></html>"),
            "/missing.png": (404, {"Content-Type": "text/plain"}, b"no"),
            "/moved.png": (301, {"Location": "/ok.png"}, b""),
            "/away.png": (302, {"Location": f"http://localhost:{port}/ok.png"}, b""),
            "/huge.png": (200, {"Content-Type": "image/png", "Content-Length": str(6 * 2**20)}, b""),
        }
        if self.path == "/liar.png":  # says nothing about its size, then sends too much
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(6):
                self.wfile.write(b"\x00" * 2**20)
            return
        if self.path == "/slow.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "20")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"\x00")
                self.wfile.flush()
                time.sleep(0.1)
            return
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def image_host() -> Iterator[str]:
    """The server's base URL (http://127.0.0.1:<port>) while it runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
