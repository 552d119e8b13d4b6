"""A local stand-in for the parts of the X API v2 the X channel uses.

Runs a ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread. Real tweepy talks to
it (``XSettings(api_base_url=standin.url)``), and tests inspect what it holds::

    with XStandIn() as x:
        channel = XChannel(XSettings(..., api_base_url=x.url))
        channel.post("Hi https://ex.org/a1", url="https://ex.org/a1")
        assert x.tweets[0].text.startswith("Hi https://t.co/")

Faults can be scripted (``fail_next``, ``rate_limit_next``, ``post_then_fail_next``),
drawn at random with a seeded RNG (``fail_rate``, ``post_then_fail_rate``) or come from a
rate limit (``rate_limit=(20, 3.0)``: 20 calls per 3 seconds, then 429).

Standalone, for a full stack (prints its URL, runs until killed)::

    python -m tests.support.x_standin --port 8089 --fail-rate 0.15 --rate-limit 20/3

Another process reads its state with ``GET /_standin/state`` and queues faults with
``POST /_standin/faults`` (see ``XStandIn._control``), and empties it between tests with
``POST /_standin/reset``; those routes need no OAuth.

Response shapes follow the X API v2 reference; error bodies are RFC 7807 problem
documents as X sends them.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import string
import sys
import time
from dataclasses import dataclass, field
from email.policy import HTTP as email_policy
from email.parser import BytesParser
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from twitter_text import extract_urls_with_indices, parse_tweet

from tests.support.standin_http import JsonHandler, LocalServer, run_until_stopped

TWEEPY_HOST = "https://api.twitter.com"
TWEEPY_UPLOAD_HOST = "https://upload.twitter.com"  # tweepy.API's media upload host (v1.1)
# Spec: X API v1.1 POST media/upload — images up to 5 MB, JPEG, PNG, GIF or WEBP.
MEDIA_MAX_BYTES = 5 * 1024 * 1024
_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_OAUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class StoredTweet:
    """A tweet as the stand-in holds it. ``text`` has links replaced by t.co, as X does."""

    id: str
    text: str
    original_text: str
    author_id: str
    created_at: datetime
    urls: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False
    media: list[dict[str, Any]] = field(default_factory=list)  # {"media_id", "type", "size", "alt"}
    in_reply_to: str | None = None

    def as_json(self, fields: set[str]) -> dict[str, Any]:
        # Spec: X API v2 Tweet object — id, text and edit_history_tweet_ids are default fields.
        data: dict[str, Any] = {"id": self.id, "text": self.text, "edit_history_tweet_ids": [self.id]}
        if "created_at" in fields:
            data["created_at"] = self.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if "author_id" in fields:
            data["author_id"] = self.author_id
        if "entities" in fields and self.urls:
            data["entities"] = {"urls": [dict(u) for u in self.urls]}
        if "referenced_tweets" in fields and self.in_reply_to:
            data["referenced_tweets"] = [{"type": "replied_to", "id": self.in_reply_to}]
        return data


@dataclass(frozen=True)
class LoggedRequest:
    """One request the stand-in received and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    has_auth: bool             # an Authorization header was sent
    oauth_signed: bool         # it starts with "OAuth " and carries oauth_signature
    oauth_consumer_key: str | None
    oauth_token: str | None
    signature_valid: bool | None  # None unless the stand-in was given the secrets
    status: int


@dataclass
class Scripted:
    """A canned answer for the next request that matches ``method`` and ``path`` (a prefix).

    ``drop`` closes the connection without answering. ``store_first`` (POST /2/tweets
    only) keeps the tweet before answering, so the client cannot know it was posted.
    ``delay`` waits first; with ``status`` None the request is then handled normally.
    """

    status: int | None = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None
    drop: bool = False
    store_first: bool = False
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or path.startswith(self.path))


def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> dict[str, Any]:
    """An error body shaped like X's (RFC 7807)."""
    return {"title": title, "detail": detail, "type": type_, "status": status}


_STATUS_TITLES = {400: "Invalid Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found Error",
                  429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                  503: "Service Unavailable", 504: "Gateway Timeout"}


def _oauth_escape(value: str) -> str:
    # Spec: RFC 5849 §3.6 — percent-encode everything but ALPHA, DIGIT, "-", ".", "_", "~".
    return quote(value, safe="-._~")


class XStandIn(LocalServer):
    """The stand-in server and its inspectable state. Thread-safe; a context manager."""

    name = "x-standin"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        fail_rate: float = 0.0,
        post_then_fail_rate: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        username: str = "gazette",
        user_id: str = "1500000000000000001",
        auto_users: bool = True,
        secrets: tuple[str, str] | None = None,
        signed_base: str = TWEEPY_HOST,
    ) -> None:
        """``secrets`` = (consumer_secret, access_token_secret) turns on OAuth signature
        checks over ``signed_base`` + path (tweepy signs the api.twitter.com URL)."""
        super().__init__(host=host, port=port, handler=_Handler)
        self.fail_rate = fail_rate
        self.post_then_fail_rate = post_then_fail_rate
        self.rate_limit = rate_limit
        self.auto_users = auto_users
        self.username = username
        self.user_id = user_id
        self._secrets = secrets
        self._signed_base = signed_base.rstrip("/")
        self._rng = random.Random(seed)
        self._ids = itertools.count(1790000000000000001)
        self._user_ids = itertools.count(1600000000000000001)
        self._users: dict[str, tuple[str, str]] = {username.casefold(): (user_id, username)}
        self._window_start = 0.0
        self._window_calls = 0
        self.tweets: list[StoredTweet] = []
        self.deleted_ids: list[str] = []
        self.list_members: dict[str, list[str]] = {}
        self.media: dict[str, dict[str, Any]] = {}  # uploads by media id
        self.requests: list[LoggedRequest] = []

    # -- fault injection -----------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 503, *, method: str | None = None,
                  path: str | None = None, headers: dict[str, str] | None = None, body: Any = None) -> None:
        """The next ``count`` matching requests get ``status`` (default 503)."""
        body = body if body is not None else problem(status, _STATUS_TITLES.get(status, "Error"),
                                                     _STATUS_TITLES.get(status, "Error"))
        with self._lock:
            for _ in range(count):
                self._script.append(Scripted(status, body, dict(headers or {}), method, path))

    def rate_limit_next(self, reset_at: int | None = None, *, method: str | None = None,
                        path: str | None = None, extra_headers: dict[str, str] | None = None) -> int:
        """The next matching request gets a 429 whose ``x-rate-limit-reset`` is ``reset_at``
        (epoch seconds; default 15 minutes ahead). Returns the reset time used."""
        reset_at = reset_at if reset_at is not None else int(time.time()) + 900
        headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                   "x-rate-limit-reset": str(reset_at), **(extra_headers or {})}
        self.fail_next(1, 429, method=method, path=path, headers=headers)
        return reset_at

    def drop_next(self, count: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next ``count`` matching requests get no answer: the connection is closed."""
        with self._lock:
            for _ in range(count):
                self._script.append(Scripted(method=method, path=path, drop=True))

    def slow_next(self, seconds: float, count: int = 1, *, method: str | None = None,
                  path: str | None = None) -> None:
        """The next ``count`` matching requests are answered normally, ``seconds`` late."""
        with self._lock:
            for _ in range(count):
                self._script.append(Scripted(None, method=method, path=path, delay=seconds))

    def post_then_fail_next(self, *, drop: bool = False, status: int = 503) -> None:
        """The next POST /2/tweets stores the tweet, then answers ``status`` or drops the
        connection: the client cannot tell whether it posted."""
        with self._lock:
            self._script.append(Scripted(status, problem(status, _STATUS_TITLES.get(status, "Error"), "try again"),
                                         method="POST", path="/2/tweets", drop=drop, store_first=True))

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a new account: no posts, deletions, list members, logged requests or queued
        faults, and a fresh rate-limit window. Users and the RNG's seed are kept."""
        with self._lock:
            self._script.clear()
            self._window_start, self._window_calls = 0.0, 0
            self.tweets.clear()
            self.deleted_ids.clear()
            self.list_members.clear()
            self.media.clear()
            self.requests.clear()

    def add_user(self, username: str) -> str:
        """Register an account and return its id."""
        with self._lock:
            key = username.casefold()
            if key not in self._users:
                self._users[key] = (str(next(self._user_ids)), username)
            return self._users[key][0]

    def user(self, username: str) -> tuple[str, str] | None:
        with self._lock:
            found = self._users.get(username.casefold())
            if found is None and self.auto_users and _HANDLE.match(username):
                self.add_user(username)
                found = self._users[username.casefold()]
            return found

    @property
    def live_tweets(self) -> list[StoredTweet]:
        with self._lock:
            return [t for t in self.tweets if not t.deleted]

    def members_of(self, list_id: str) -> list[str]:
        """Usernames on a list, in the order they were added."""
        with self._lock:
            by_id = {uid: name for uid, name in self._users.values()}
            return [by_id.get(uid, uid) for uid in self.list_members.get(list_id, [])]

    # -- request handling (called from server threads) ---------------------------------------

    def _rate_limited(self) -> dict[str, str] | None:
        """Count the call against the window; the 429 headers when over the limit."""
        if self.rate_limit is None:
            return None
        limit, period = self.rate_limit
        with self._lock:
            now = time.time()
            if now - self._window_start >= period:
                self._window_start, self._window_calls = now, 0
            self._window_calls += 1
            reset = math.ceil(self._window_start + period)
            remaining = max(limit - self._window_calls, 0)
            headers = {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
                       "x-rate-limit-reset": str(reset)}
            return headers if self._window_calls > limit else None

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _store_tweet(self, text: str, in_reply_to: str | None = None) -> StoredTweet:
        with self._lock:
            tweet_id = str(next(self._ids))
            stored, urls, last = [], [], 0
            for found in extract_urls_with_indices(text):
                start, end = found["indices"]
                stored.append(text[last:start])
                tco = "https://t.co/" + "".join(self._rng.choice(string.ascii_letters + string.digits)
                                                for _ in range(10))
                begin = sum(len(s) for s in stored)
                stored.append(tco)
                expanded = found["url"] if "://" in found["url"] else "http://" + found["url"]
                # Spec: X API v2 entities.urls — indices into the t.co-wrapped text.
                urls.append({"start": begin, "end": begin + len(tco), "url": tco, "expanded_url": expanded,
                             "display_url": expanded.split("://", 1)[1][:26]})
                last = end
            stored.append(text[last:])
            tweet = StoredTweet(tweet_id, "".join(stored), text, self.user_id,
                                datetime.now(timezone.utc), urls, in_reply_to=in_reply_to)
            self.tweets.append(tweet)
            return tweet

    def _check_signature(self, method: str, path: str, query: str, oauth: dict[str, str]) -> bool | None:
        """Verify an HMAC-SHA1 OAuth 1.0a signature (RFC 5849 §3.4) when secrets are known."""
        if self._secrets is None or "oauth_signature" not in oauth:
            return None
        params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)]
        params += [(k, v) for k, v in oauth.items() if k not in ("oauth_signature", "realm")]
        normalized = "&".join(f"{k}={v}" for k, v in sorted((_oauth_escape(k), _oauth_escape(v)) for k, v in params))
        # Spec: RFC 5849 §3.4.1 — METHOD & base string URI & normalized parameters.
        signed_base = TWEEPY_UPLOAD_HOST if path.startswith("/1.1/media/") else self._signed_base
        base = "&".join((method.upper(), _oauth_escape(signed_base + path), _oauth_escape(normalized)))
        key = "&".join(_oauth_escape(s) for s in self._secrets)
        expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()
        return hmac.compare_digest(expected, oauth["oauth_signature"])

    def handle(self, handler: "_Handler") -> None:
        method = handler.command
        parts = urlsplit(handler.path)
        path, query = parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if path.startswith("/_standin/"):
            status, payload = self._control(method, path, body)
            handler.send_json(status, payload, {})
            return
        auth = handler.headers.get("Authorization") or ""
        oauth = {k: unquote(v) for k, v in _OAUTH_PARAM.findall(auth)} if auth.startswith("OAuth ") else {}
        signed = auth.startswith("OAuth ") and "oauth_signature" in oauth
        valid = self._check_signature(method, path, parts.query, oauth)

        def answer(status: int, payload: Any = None, headers: dict[str, str] | None = None,
                   drop: bool = False) -> None:
            with self._lock:
                self.requests.append(LoggedRequest(
                    method, path, query, body, bool(auth), signed, oauth.get("oauth_consumer_key"),
                    oauth.get("oauth_token"), valid, 0 if drop else status))
            if drop:
                handler.close_connection = True
                return
            handler.send_json(status, payload, headers or {})

        # Spec: X API v2 authentication — user-context endpoints need an OAuth 1.0a header.
        if not signed:
            answer(401, problem(401, "Unauthorized", "Unauthorized"))
            return
        if valid is False:
            answer(401, {"errors": [{"message": "Could not authenticate you", "code": 32}],
                         "title": "Unauthorized", "detail": "Unauthorized", "type": "about:blank", "status": 401})
            return
        scripted = self._next_scripted(method, path)
        if scripted is not None and scripted.delay:
            time.sleep(scripted.delay)
        if scripted is not None and scripted.status is not None:
            if scripted.store_first and method == "POST" and path == "/2/tweets" and isinstance(body, dict):
                self._store_tweet(str(body.get("text", "")))
            answer(scripted.status, scripted.body, scripted.headers, scripted.drop)
            return
        limited = self._rate_limited()
        if limited is not None:
            answer(429, problem(429, "Too Many Requests", "Too Many Requests"), limited)
            return
        if self._roll(self.fail_rate):
            answer(503, problem(503, "Service Unavailable", "Service Unavailable"))
            return
        if method == "POST" and path == "/2/tweets" and self._roll(self.post_then_fail_rate):
            if isinstance(body, dict) and body.get("text"):
                self._store_tweet(str(body["text"]))
            answer(503, problem(503, "Service Unavailable", "Service Unavailable"))
            return
        if method == "POST" and path == "/1.1/media/upload.json":
            status, payload = self._upload_media(raw, handler.headers.get("Content-Type") or "")
        else:
            status, payload = self._route(method, path, query, body)
        answer(status, payload)

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON: what a full-stack test checks from another process."""
        with self._lock:
            return {
                "tweets": [{"id": t.id, "text": t.text, "original_text": t.original_text,
                            "deleted": t.deleted, "in_reply_to": t.in_reply_to, "urls": [u["expanded_url"] for u in t.urls]}
                           for t in self.tweets],
                "deleted_ids": list(self.deleted_ids),
                "list_members": {k: list(v) for k, v in self.list_members.items()},
                "requests": [{"method": r.method, "path": r.path, "status": r.status,
                              "oauth_signed": r.oauth_signed} for r in self.requests],
            }

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return problem(status, _STATUS_TITLES.get(status, "Error"), message)

    def _more_faults(self, kind: Any, count: int, where: dict[str, Any], body: dict[str, Any]) -> bool:
        """``{"kind": "slow", "seconds": 5}`` and ``{"kind": "post_then_fail", "drop": true}``."""
        if kind == "slow":
            self.slow_next(float(body.get("seconds", 5)), count, **where)
        elif kind == "post_then_fail":
            self.post_then_fail_next(drop=bool(body.get("drop", False)))
        else:
            return False
        return True

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        segments = path.strip("/").split("/")
        if method == "POST" and segments == ["2", "tweets"]:
            return self._create_tweet(body)
        if method == "DELETE" and len(segments) == 3 and segments[:2] == ["2", "tweets"]:
            return self._delete_tweet(segments[2])
        if method == "GET" and segments == ["2", "users", "me"]:
            return 200, {"data": {"id": self.user_id, "name": self.username.title(), "username": self.username}}
        if method == "GET" and len(segments) == 5 and segments[:4] == ["2", "users", "by", "username"]:
            return self._user_by_name(segments[4])
        if method == "GET" and len(segments) == 4 and segments[:2] == ["2", "users"] and segments[3] == "tweets":
            return self._users_tweets(segments[2], query)
        if method == "POST" and len(segments) == 4 and segments[:2] == ["2", "lists"] and segments[3] == "members":
            return self._add_member(segments[2], body)
        if method == "POST" and segments == ["1.1", "media", "metadata", "create.json"]:
            return self._media_metadata(body)
        return 404, problem(404, "Not Found Error", f"no route for {method} {path}")

    def _create_tweet(self, body: Any) -> tuple[int, Any]:
        # Spec: X API v2 POST /2/tweets.
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return 400, {"errors": [{"message": "text is required"}], **problem(
                400, "Invalid Request", "One or more parameters to your request was invalid.",
                "https://api.twitter.com/2/problems/invalid-request")}
        if parse_tweet(text).weightedLength > 280:
            return 403, problem(403, "Forbidden", "Your Tweet text is too long.")
        media_ids = [str(m) for m in ((body.get("media") or {}).get("media_ids") or [])]
        # Spec: X API v2 POST /2/tweets — reply.in_reply_to_tweet_id names the post answered.
        reply = body.get("reply") if isinstance(body.get("reply"), dict) else {}
        in_reply_to = str(reply["in_reply_to_tweet_id"]) if reply.get("in_reply_to_tweet_id") else None
        with self._lock:
            if any(m not in self.media for m in media_ids):
                return 400, {"errors": [{"message": "Your media IDs are invalid."}], **problem(
                    400, "Invalid Request", "One or more parameters to your request was invalid.")}
            if any(t.original_text == text for t in self.tweets if not t.deleted):
                return 403, problem(403, "Forbidden", DUPLICATE_DETAIL)
            if in_reply_to and not any(t.id == in_reply_to and not t.deleted for t in self.tweets):
                return 403, problem(403, "Forbidden",
                                    "You attempted to reply to a Tweet that is deleted or not visible to you.")
            tweet = self._store_tweet(text, in_reply_to)
            tweet.media = [dict(self.media[m]) for m in media_ids]
        return 201, {"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}}

    def _delete_tweet(self, tweet_id: str) -> tuple[int, Any]:
        with self._lock:
            for tweet in self.tweets:
                if tweet.id == tweet_id and not tweet.deleted:
                    tweet.deleted = True
                    self.deleted_ids.append(tweet_id)
                    return 200, {"data": {"deleted": True}}
        return 404, problem(404, "Not Found Error", f"Could not find tweet with id: [{tweet_id}].",
                            "https://api.twitter.com/2/problems/resource-not-found")

    def _user_by_name(self, username: str) -> tuple[int, Any]:
        found = self.user(username)
        if found is None:
            # Spec: X API v2 — an unknown username is a 200 with "errors" and no "data".
            return 200, {"errors": [{"value": username, "detail": f"Could not find user with username: [{username}].",
                                     "title": "Not Found Error", "resource_type": "user", "parameter": "username",
                                     "resource_id": username,
                                     "type": "https://api.twitter.com/2/problems/resource-not-found"}]}
        return 200, {"data": {"id": found[0], "name": found[1], "username": found[1]}}

    def _users_tweets(self, user_id: str, query: dict[str, str]) -> tuple[int, Any]:
        try:
            max_results = int(query.get("max_results", "10"))
        except ValueError:
            max_results = 0
        if not 5 <= max_results <= 100:
            return 400, {"errors": [{"parameters": {"max_results": [query.get("max_results")]},
                                     "message": "The `max_results` query parameter value is not between 5 and 100"}],
                         **problem(400, "Invalid Request", "One or more parameters to your request was invalid.",
                                   "https://api.twitter.com/2/problems/invalid-request")}
        fields = set(filter(None, query.get("tweet.fields", "").split(",")))
        with self._lock:
            mine = [t for t in reversed(self.tweets) if t.author_id == user_id and not t.deleted][:max_results]
            data = [t.as_json(fields) for t in mine]
        if not data:
            return 200, {"meta": {"result_count": 0}}
        return 200, {"data": data, "meta": {"result_count": len(data), "newest_id": data[0]["id"],
                                            "oldest_id": data[-1]["id"]}}

    def _upload_media(self, raw: bytes, content_type: str) -> tuple[int, Any]:
        """Spec: X API v1.1 POST media/upload — multipart ``media``; answers media_id(_string)."""
        message = BytesParser(policy=email_policy).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "media"] \
            if message.is_multipart() else []
        data = parts[0].get_payload(decode=True) if parts else None
        if not data:
            return 400, {"errors": [{"code": 38, "message": "media parameter is missing."}]}
        if len(data) > MEDIA_MAX_BYTES:
            return 400, {"errors": [{"code": 324, "message": f"File size exceeds {MEDIA_MAX_BYTES} bytes."}]}
        kind = next((t for magic, t in _IMAGE_MAGIC.items() if data.startswith(magic)), None)
        if kind is None:
            return 400, {"errors": [{"code": 324, "message": "media type unrecognized."}]}
        with self._lock:
            media_id = str(next(self._ids))
            self.media[media_id] = {"media_id": media_id, "type": kind, "size": len(data), "alt": None}
        return 200, {"media_id": int(media_id), "media_id_string": media_id, "size": len(data),
                     "expires_after_secs": 86400, "image": {"image_type": kind, "w": 1, "h": 1}}

    def _media_metadata(self, body: Any) -> tuple[int, Any]:
        """Spec: X API v1.1 POST media/metadata/create — {"media_id", "alt_text": {"text"}}; 200, empty."""
        media_id = str(body.get("media_id", "")) if isinstance(body, dict) else ""
        alt = ((body or {}).get("alt_text") or {}).get("text") if isinstance(body, dict) else None
        with self._lock:
            if media_id not in self.media:
                return 400, {"errors": [{"code": 324, "message": "Invalid media id."}]}
            if not isinstance(alt, str) or len(alt) > 1000:
                return 400, {"errors": [{"code": 44, "message": "alt_text.text must be at most 1000 characters."}]}
            self.media[media_id]["alt"] = alt
        return 200, None

    def _add_member(self, list_id: str, body: Any) -> tuple[int, Any]:
        user_id = str(body.get("user_id", "")) if isinstance(body, dict) else ""
        if not user_id:
            return 400, problem(400, "Invalid Request", "user_id is required")
        with self._lock:
            members = self.list_members.setdefault(list_id, [])
            if user_id not in members:
                members.append(user_id)
        return 200, {"data": {"is_member": True}}


class _Handler(JsonHandler):
    server_version = "x-standin/1"

    def _dispatch(self) -> None:
        self.server.standin.handle(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_DELETE = do_PUT = _dispatch


def _rate(value: str) -> tuple[int, float]:
    calls, _, seconds = value.partition("/")
    try:
        return int(calls), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError("expected CALLS/SECONDS, e.g. 20/3") from None


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.x_standin", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 503")
    parser.add_argument("--post-then-fail-rate", type=float, default=0.0,
                        help="share of posts stored but answered 503 (unknown outcome)")
    parser.add_argument("--rate-limit", type=_rate, default=None, help="CALLS/SECONDS, then 429")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--username", default="gazette")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    standin = XStandIn(host=args.host, port=args.port, seed=args.seed, fail_rate=args.fail_rate,
                       post_then_fail_rate=args.post_then_fail_rate, rate_limit=args.rate_limit,
                       username=args.username)
    standin._server.verbose = args.verbose
    run_until_stopped(standin)
    print(f"x-standin: {len(standin.live_tweets)} tweets, {len(standin.requests)} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
