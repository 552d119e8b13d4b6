"""The pure-ASGI gate in front of the app: headers on every answer, and no body read for nothing.

Before a request body is read (into memory), the gate asks ``admit`` whether the request's
headers could possibly be authorised (a bearer token, a signature header): a request that
cannot is answered 401 at once, without reading a byte of its body. A body larger than
``max_bytes`` (64 KiB for an ops form) is answered 413, and one that takes longer than ``body_timeout_s`` to arrive
408, so that a client sending one byte every few seconds holds no connection for long.
Every answer gets ``X-Content-Type-Options: nosniff`` and no ``server`` header.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

Scope = dict[str, Any]
# (status, detail, extra headers) to refuse a request on its headers alone; None: read on.
Refusal = tuple[int, str, dict[str, str]]
Admit = Callable[[str, str, dict[bytes, bytes]], Refusal | None]
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
BODY_PATHS = ("/api/", "/ops/")  # only routes under these read a body: elsewhere none is read at all
OPS_FORM_MAX_BYTES = 64 * 1024  # an ops form (the login too, which anyone may post) is a few hundred bytes


def _secured(send: Any) -> Any:
    async def send_secured(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (b"server",
                                                                                         b"x-content-type-options")]
            message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
        await send(message)
    return send_secured


class BodyLimit:
    """Refuse on the headers (``admit``), then read the body within ``max_bytes`` and
    ``body_timeout_s`` and replay it to ``app``. ``self.app`` is the wrapped app."""

    def __init__(self, app: Any, max_bytes: int, *, body_timeout_s: float = 30.0, admit: Admit | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self.admit = admit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _secured(send)
        if scope["method"] not in BODY_METHODS or not scope["path"].startswith(BODY_PATHS):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        refusal = self.admit(scope["method"], scope["path"], headers) if self.admit else None
        if refusal is not None:
            await _answer(send, *refusal)
            return
        limit = min(self.max_bytes, OPS_FORM_MAX_BYTES) if scope["path"].startswith("/ops/") else self.max_bytes
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _too_large(send, limit)
            return
        # Read the body here, up to the limit, and replay it to the app: a body that turns out
        # too large mid-stream is answered 413 before the app has seen any of it.
        chunks: list[bytes] = []
        seen = 0
        deadline = time.monotonic() + self.body_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                await _answer(send, 408, f"request body not received within {self.body_timeout_s:g} s",
                              {"connection": "close"})
                return
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)



async def _too_large(send: Any, limit: int) -> None:
    await _answer(send, 413, f"request body larger than {limit} bytes", {})


async def _answer(send: Any, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *((k.lower().encode(), v.encode()) for k, v in headers.items())]})
    await send({"type": "http.response.body", "body": body})
