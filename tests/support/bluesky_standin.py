"""A local stand-in for the parts of a Bluesky PDS (XRPC) the Bluesky channel uses.

Real atproto ``Client`` talks to it (``BlueskySettings(service_url=standin.url, ...)``)::

    with BlueskyStandIn() as b:
        channel = BlueskyChannel(BlueskySettings(handle=b.handle, app_password=b.password, service_url=b.url))
        channel.post("Hi https://ex.org/a1", url="https://ex.org/a1")
        assert b.live_posts()[0]["text"] == "Hi https://ex.org/a1"

It answers as the reference PDS does (lexicons com.atproto.server.createSession and
refreshSession, com.atproto.repo.createRecord, getRecord, listRecords, deleteRecord and
uploadBlob, com.atproto.identity.resolveHandle):

* sessions are JWTs whose ``exp`` the SDK reads; an expired access token gets 400
  ``ExpiredToken``, an unknown one 401 ``InvalidToken``; it counts logins and refreshes;
* ``app.bsky.feed.post`` records are validated: text at most 300 graphemes and 3000 bytes,
  record keys TIDs, facets inside the text's UTF-8 bytes (400 ``InvalidRecord`` otherwise);
* a record key already taken answers 500 ``InternalServerError``, as the PDS does today
  (bluesky-social/atproto issue #3718);
* errors are XRPC error bodies ``{"error", "message"}``; a window set with ``rate_limit``
  gives ``ratelimit-limit``, ``-remaining``, ``-reset`` (epoch seconds) and ``-policy``.

Standalone: ``python -m tests.support.bluesky_standin --port 8092 --fail-rate 0.15``.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
from typing import Any

import regex

from tests.support.standin_http import Request, StandInServer, run_until_stopped, standalone_arguments

_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def cid_of(data: bytes, codec: int = 0x71) -> str:
    """A CIDv1 (sha2-256, base32) of ``data``: dag-cbor (0x71) for records, raw (0x55) for blobs."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


class BlueskyStandIn(StandInServer):
    """The stand-in and its state. ``access_ttl`` is how long an access token lives
    (seconds); the SDK refreshes one that expires within 15 minutes before each call."""

    name = "bluesky-standin"

    def __init__(self, *, handle: str = "gazette.bsky.social", password: str = "app-pass-word-1234",
                 access_ttl: int = 7200, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handle = handle
        self.password = password
        self.did = "did:plc:standingazette0000000001"
        self.access_ttl = access_ttl
        self._tokens = itertools.count(1)
        self.logins = 0
        self.refreshes = 0
        self._access: dict[str, float] = {}   # token -> expiry
        self._refresh: set[str] = set()
        self.records: dict[tuple[str, str], dict[str, Any]] = {}   # (collection, rkey) -> record
        self.blobs: dict[str, bytes] = {}
        self.handles: dict[str, str] = {handle: self.did}

    # -- state ---------------------------------------------------------------------------

    def clear(self) -> None:
        self.records.clear()
        self.blobs.clear()
        self.logins = self.refreshes = 0

    def add_handle(self, handle: str) -> str:
        """Make ``handle`` resolve; returns its DID."""
        with self._lock:
            return self.handles.setdefault(handle.lower(), f"did:plc:{hashlib.sha256(handle.encode()).hexdigest()[:24]}")

    def expire_tokens(self, *, refresh_too: bool = False) -> None:
        """Every access token issued so far is expired (server side); with ``refresh_too``
        the refresh tokens are revoked as well."""
        with self._lock:
            for token in self._access:
                self._access[token] = 0
            if refresh_too:
                self._refresh.clear()

    def live_posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for (c, _), r in self.records.items() if c == "app.bsky.feed.post"]

    def keys(self, collection: str) -> list[str]:
        with self._lock:
            return [k for (c, k) in self.records if c == collection]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"records": [{"collection": c, "rkey": k, "value": v} for (c, k), v in self.records.items()],
                    "logins": self.logins, "refreshes": self.refreshes,
                    "requests": [{"method": r.method, "path": r.path, "status": r.status} for r in self.requests]}

    # -- the service ---------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> Any:
        names = {400: "InvalidRequest", 401: "AuthenticationRequired", 429: "RateLimitExceeded",
                 500: "InternalServerError", 502: "UpstreamFailure", 503: "NotEnoughResources"}
        return {"error": names.get(status, "InternalServerError"), "message": message}

    def rate_limit_headers(self, limit: int, remaining: int, reset_at: int) -> dict[str, str]:
        return {"ratelimit-limit": str(limit), "ratelimit-remaining": str(remaining),
                "ratelimit-reset": str(reset_at), "ratelimit-policy": f"{limit};w=300"}

    def _issue(self) -> dict[str, Any]:
        now = int(time.time())
        n = next(self._tokens)
        header = _b64({"typ": "at+jwt", "alg": "ES256K"})
        access = ".".join((header, _b64({"scope": "com.atproto.appPass", "sub": self.did, "iat": now,
                                         "exp": now + self.access_ttl, "aud": "did:web:standin", "n": n}), "c2ln"))
        refresh = ".".join((_b64({"typ": "refresh+jwt", "alg": "ES256K"}),
                            _b64({"scope": "com.atproto.refresh", "sub": self.did, "iat": now, "exp": now + 90 * 86400,
                                  "jti": f"r{n}", "aud": "did:web:standin"}), "c2ln"))
        self._access[access] = now + self.access_ttl
        self._refresh.add(refresh)
        # Spec: createSession output — no didDoc here, so the SDK keeps talking to this host.
        return {"accessJwt": access, "refreshJwt": refresh, "handle": self.handle, "did": self.did, "active": True}

    def authorize(self, request: Request) -> tuple[int, Any] | None:
        method = request.path.removeprefix("/xrpc/")
        if method in ("com.atproto.server.createSession", "com.atproto.identity.resolveHandle"):
            return None
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
        with self._lock:
            if method == "com.atproto.server.refreshSession":
                return None if token in self._refresh else (400, {"error": "ExpiredToken",
                                                                   "message": "Token has been revoked"})
            if token not in self._access:
                return 401, {"error": "InvalidToken", "message": "Token could not be verified"}
            if self._access[token] <= time.time():
                return 400, {"error": "ExpiredToken", "message": "Token has expired"}
        return None

    def route(self, request: Request) -> tuple[int, Any]:
        method = request.path.removeprefix("/xrpc/")
        body = request.body if isinstance(request.body, dict) else {}
        with self._lock:
            if method == "com.atproto.server.createSession":
                if body.get("identifier") not in (self.handle, self.did) or body.get("password") != self.password:
                    return 401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
                self.logins += 1
                return 200, self._issue()
            if method == "com.atproto.server.refreshSession":
                self._refresh.discard((request.headers.get("authorization") or "").removeprefix("Bearer "))
                self.refreshes += 1
                return 200, self._issue()
            if method == "com.atproto.identity.resolveHandle":
                did = self.handles.get((request.arg("handle") or "").lower())
                return (200, {"did": did}) if did else (400, {"error": "InvalidRequest",
                                                             "message": "Unable to resolve handle"})
            if method == "com.atproto.repo.createRecord":
                return self._create(body)
            if method == "com.atproto.repo.getRecord":
                return self._get(request.arg("collection") or "", request.arg("rkey") or "")
            if method == "com.atproto.repo.listRecords":
                return self._list(request.arg("collection") or "", int(request.arg("limit", "50") or 50))
            if method == "com.atproto.repo.deleteRecord":
                self.records.pop((str(body.get("collection")), str(body.get("rkey"))), None)
                return 200, {}
            if method == "com.atproto.repo.uploadBlob":
                return self._upload(request)
        return 501, {"error": "MethodNotImplemented", "message": f"Method Not Implemented: {method}"}

    def _uri(self, collection: str, rkey: str) -> str:
        return f"at://{self.did}/{collection}/{rkey}"

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        collection, rkey, record = str(body.get("collection")), str(body.get("rkey") or ""), body.get("record")
        if body.get("repo") not in (self.did, self.handle) or not isinstance(record, dict):
            return 400, {"error": "InvalidRequest", "message": "Input/repo must be the session's account"}
        if record.get("$type") != collection:
            return 400, {"error": "InvalidRecord", "message": f"Invalid $type: expected {collection}"}
        if not _TID.match(rkey):
            return 400, {"error": "InvalidRequest", "message": f"Invalid record key for a tid collection: {rkey}"}
        problem = self._invalid(collection, record)
        if problem:
            return 400, {"error": "InvalidRecord", "message": f"Invalid {collection} record: {problem}"}
        if (collection, rkey) in self.records:
            return 500, {"error": "InternalServerError", "message": "Internal Server Error"}
        self.records[(collection, rkey)] = record
        cid = cid_of(json.dumps(record, sort_keys=True).encode())
        return 200, {"uri": self._uri(collection, rkey), "cid": cid, "validationStatus": "valid",
                     "commit": {"cid": cid_of(cid.encode()), "rev": rkey}}

    def _invalid(self, collection: str, record: dict[str, Any]) -> str | None:
        """What the lexicon refuses in a record, if anything."""
        if collection == "app.bsky.graph.listitem":
            return None if record.get("subject") and record.get("list") else "Record must have subject and list"
        if collection != "app.bsky.feed.post":
            return None
        text = record.get("text")
        if not isinstance(text, str):
            return "Record/text must be a string"
        if len(regex.findall(r"\X", text)) > 300:
            return "Record/text must not be longer than 300 graphemes"
        size = len(text.encode())
        if size > 3000:
            return "Record/text must not be longer than 3000 characters"
        for i, facet in enumerate(record.get("facets") or []):
            index = facet.get("index") or {}
            start, end = index.get("byteStart"), index.get("byteEnd")
            if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= size:
                return f"Record/facets/{i}/index is outside the text's bytes"
        thumb = ((record.get("embed") or {}).get("external") or {}).get("thumb")
        if thumb is not None and (thumb.get("ref") or {}).get("$link") not in self.blobs:
            return "Record/embed/external/thumb refers to no uploaded blob"
        return None

    def _get(self, collection: str, rkey: str) -> tuple[int, Any]:
        record = self.records.get((collection, rkey))
        if record is None:
            return 400, {"error": "RecordNotFound",
                         "message": f"Could not locate record: {self._uri(collection, rkey)}"}
        return 200, {"uri": self._uri(collection, rkey), "cid": cid_of(json.dumps(record, sort_keys=True).encode()),
                     "value": record}

    def _list(self, collection: str, limit: int) -> tuple[int, Any]:
        # Spec: listRecords — newest (highest record key) first unless reverse.
        keys = sorted((k for (c, k) in self.records if c == collection), reverse=True)[:max(1, min(limit, 100))]
        return 200, {"records": [{"uri": self._uri(collection, k),
                                  "cid": cid_of(json.dumps(self.records[(collection, k)], sort_keys=True).encode()),
                                  "value": self.records[(collection, k)]} for k in keys]}

    def _upload(self, request: Request) -> tuple[int, Any]:
        data = request.raw
        mime = (request.headers.get("content-type") or "").split(";")[0]
        if not data:
            return 400, {"error": "InvalidRequest", "message": "Request body is empty"}
        cid = cid_of(data, codec=0x55)
        self.blobs[cid] = data
        return 200, {"blob": {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(data)}}


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in until SIGINT or SIGTERM; prints its URL."""
    parser = standalone_arguments("python -m tests.support.bluesky_standin", 8092)
    parser.add_argument("--access-ttl", type=int, default=7200, help="seconds an access token lives")
    args = parser.parse_args(argv)
    run_until_stopped(BlueskyStandIn(host=args.host, port=args.port, fail_rate=args.fail_rate, seed=args.seed,
                                     access_ttl=args.access_ttl))


if __name__ == "__main__":
    main()
