"""Bearer tokens and HMAC-signed webhooks, both compared in constant time."""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence

from fastapi import HTTPException, Request

from apps.web.limits import Admit, Refusal

SIGNATURE_HEADER = "X-Syndication-Signature"
_UNIX_SECONDS = re.compile(r"-?[0-9]{1,12}")


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
    require_bearer_header(request.headers.get("authorization", ""), tokens)


def require_bearer_header(authorization: str, tokens: Sequence[str]) -> None:
    """Raise 401 unless ``authorization`` is ``Bearer <one of tokens>``."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthorized("missing bearer token")
    if not tokens or not token_matches(value.strip(), tokens):
        raise _unauthorized("invalid bearer token")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a CMS sends: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def parse_signature(header: str | None) -> tuple[int, str]:
    """``(timestamp, hex MAC)`` from a signature header; raises 401 when it is missing or malformed.

    ``t=`` is at most 12 digits: a longer one is no time of this era (and 400 digits overflow
    the float a clock reads).
    """
    if not header:
        raise _unauthorized(f"missing {SIGNATURE_HEADER} header")
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    t = parts.get("t", "").strip()
    if not _UNIX_SECONDS.fullmatch(t):
        raise _unauthorized(f"{SIGNATURE_HEADER}: t= must be unix seconds")
    return int(t), parts.get("v1", "").strip()


def check_fresh(timestamp: int, *, tolerance_s: int, now: float) -> None:
    """Raise 401 when ``timestamp`` is outside the replay window around ``now``."""
    if abs(now - timestamp) > tolerance_s:
        raise _unauthorized(f"{SIGNATURE_HEADER}: timestamp outside the {tolerance_s}s replay window")


def verify_signature(header: str | None, body: bytes, secret: str | None, *, tolerance_s: int,
                     now: float | None = None) -> tuple[int, str]:
    """Raise 401 unless ``header`` is a valid, fresh signature of ``body``; returns (timestamp, MAC).

    The timestamp is signed with the body, and one outside ``tolerance_s`` is refused, so a
    captured request cannot be replayed later; the caller remembers the MAC until the window
    ends, so it cannot be replayed within it either.
    """
    if not secret:
        raise _unauthorized("signed webhooks are not configured")
    timestamp, presented = parse_signature(header)
    check_fresh(timestamp, tolerance_s=tolerance_s, now=time.time() if now is None else now)
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise _unauthorized(f"{SIGNATURE_HEADER}: signature does not match the body")
    return timestamp, expected


def admission(*, api_tokens: Sequence[str], webhook_secret: str | None, tolerance_s: int,
              now: Callable[[], float], ops_cookie: str) -> Admit:
    """What ``apps.web.limits.BodyLimit`` asks before it reads a body: a request to the API
    without a valid bearer token, to the webhook without a fresh signature header, or to an
    ops action with neither a bearer token nor a session cookie, is refused on its headers."""

    def admit(method: str, path: str, headers: dict[bytes, bytes]) -> Refusal | None:
        try:
            if path == "/api/v1/webhook":
                if not webhook_secret:
                    raise _unauthorized("signed webhooks are not configured")
                timestamp, _ = parse_signature(headers.get(SIGNATURE_HEADER.lower().encode(), b"").decode("latin-1"))
                check_fresh(timestamp, tolerance_s=tolerance_s, now=now())
            elif path.startswith("/api/"):
                require_bearer_header(headers.get(b"authorization", b"").decode("latin-1"), api_tokens)
            elif path.startswith("/ops/") and path != "/ops/login":
                bearer = headers.get(b"authorization", b"").decode("latin-1").strip()
                if not bearer and f"{ops_cookie}=" not in headers.get(b"cookie", b"").decode("latin-1"):
                    raise HTTPException(401, "an ops token is required (Authorization: Bearer, or log in at "
                                             "/ops/login)", headers={"WWW-Authenticate": 'Bearer realm="syndication-ops"'})
        except HTTPException as exc:
            return exc.status_code, str(exc.detail), dict(exc.headers or {})
        return None

    return admit
