"""Bearer tokens and HMAC-signed webhooks, both compared in constant time."""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from fastapi import HTTPException, Request

SIGNATURE_HEADER = "X-Syndication-Signature"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": 'Bearer realm="syndication"'})


def token_matches(presented: str, tokens: Sequence[str]) -> bool:
    """True if ``presented`` equals one of ``tokens``; every token is compared, in constant time."""
    presented_b = presented.encode()
    found = False
    for token in tokens:
        found |= hmac.compare_digest(presented_b, token.encode())
    return found


def require_bearer(request: Request, tokens: Sequence[str]) -> None:
    """Raise 401 unless the request carries ``Authorization: Bearer <one of tokens>``."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthorized("missing bearer token")
    if not tokens or not token_matches(value.strip(), tokens):
        raise _unauthorized("invalid bearer token")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a CMS sends: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(header: str | None, body: bytes, secret: str | None, *, tolerance_s: int,
                     now: float | None = None) -> None:
    """Raise 401 unless ``header`` is a valid, fresh signature of ``body``.

    The timestamp is signed with the body, and one outside ``tolerance_s`` is refused, so a
    captured request cannot be replayed later.
    """
    if not secret:
        raise _unauthorized("signed webhooks are not configured")
    if not header:
        raise _unauthorized(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        raise _unauthorized(f"{SIGNATURE_HEADER}: t= must be unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise _unauthorized(f"{SIGNATURE_HEADER}: timestamp outside the {tolerance_s}s replay window")
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    if not hmac.compare_digest(expected.encode(), parts.get("v1", "").encode()):
        raise _unauthorized(f"{SIGNATURE_HEADER}: signature does not match the body")
