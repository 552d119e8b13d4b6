"""The Bluesky channel: the only module that imports the atproto SDK.

It posts ``app.bsky.feed.post`` records to the account's repository with an app password and
turns every SDK and httpx failure into an error of ``syndication.errors`` (``_translate``).

* A post is at most 300 graphemes; links and mentions become facets whose byte offsets
  count UTF-8 bytes (Spec: atproto "Links, mentions, and rich text").
* It carries an external embed card: the article's title, summary and, when the delivery
  brings the article's image (fetched by ``syndication.media``), a thumbnail blob.
* The record key is derived from the delivery, so a retry cannot make a second post: the
  repository already holds that key and the attempt ends as ``AlreadyPosted``.
* One session per account and process: created once, refreshed by the SDK before its
  access token expires, renewed with the refresh token when the service refuses it, and
  created again with the app password only when the refresh is refused too (the service
  rate-limits createSession: 30 per 5 minutes, 300 a day).

Usage::

    channel = BlueskyChannel(BlueskySettings(handle="news.example.org", app_password="..."))
    result = channel.post("Headline https://news.example.org/a1", url="https://news.example.org/a1")
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import regex
from atproto import Client, Request, Session, models
from atproto import exceptions as at
from pydantic import BaseModel, SecretStr, model_validator

from syndication.channels.base import ChannelKind, Media, PostContext, PostResult, PostRules, same_words, social_handle
from syndication.errors import (
    AlreadyPosted,
    ChannelError,
    ConfigError,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)

log = logging.getLogger(__name__)

BLUESKY_SERVICE_URL = "https://bsky.social"
# Spec: lexicon app.bsky.feed.post — text maxGraphemes 300.
BLUESKY_MAX_GRAPHEMES = 300
# Spec: atproto handles — a domain name: labels of letters, digits and "-", dot separated.
BLUESKY_HANDLE = r"@?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
POST = "app.bsky.feed.post"
LIST_ITEM = "app.bsky.graph.listitem"
_RATE_LIMIT_FALLBACK = timedelta(seconds=60)
_RECENT_POSTS = 50
# Tokens the service no longer takes: renew the session, then try once more.
_TOKEN_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing"}
# Spec: lexicon app.bsky.embed.external — thumb accepts image/*, maxSize 1,000,000 bytes.
_THUMB_MAX_BYTES = 1_000_000
_URL = re.compile(r"(?<![\w/])https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'’”]")
_MENTION = re.compile(r"(?<![\w@])@(" + BLUESKY_HANDLE[2:] + r")")
# Spec: atproto TID — base32-sortable, 13 characters.
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_FALLBACK_EPOCH = 1_704_067_200  # 2024-01-01: the time part of a key for a caller without one

# One session per (service, handle) per process, so a channel built again reuses it.
_sessions: dict[tuple[str, str], str] = {}
_sessions_lock = threading.Lock()


def bluesky_length(text: str) -> int:
    """The length Bluesky counts: graphemes (user-perceived characters), links in full.

    >>> bluesky_length("🇧🇷 ok")
    4
    """
    return len(regex.findall(r"\X", text))


BLUESKY_RULES = PostRules(length=bluesky_length, handle=social_handle("bluesky", BLUESKY_HANDLE))


class BlueskySettings(BaseModel):
    """One Bluesky account (SYNDICATION_BLUESKY__*): it posts when ``handle`` and
    ``app_password`` are set. ``staff_list_uri`` is an ``at://`` list URI."""

    handle: str | None = None
    app_password: SecretStr | None = None
    service_url: str = BLUESKY_SERVICE_URL
    staff_list_uri: str | None = None
    language: str = "en"

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        # The compose file passes every variable, empty when the operator set none.
        return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data

    @property
    def enabled(self) -> bool:
        return bool(self.handle and self.app_password and self.app_password.get_secret_value())


def record_key(key: str, occurred_at: datetime | None) -> str:
    """A TID (Spec: atproto "Record Key", type tid) drawn from the delivery: its time part is
    when the delivery was planned, to the second, plus 20 bits of the key's hash; the 10-bit
    clock id is more of it. The same delivery always gets the same key."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    seconds = int(occurred_at.timestamp()) if occurred_at else _FALLBACK_EPOCH + digest % 31_536_000
    micros = seconds * 1_000_000 + (digest >> 44) % 1_000_000
    value = (micros << 10) | (digest & 0x3FF)  # the top bit stays 0: micros < 2**53
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def facets_for(text: str, resolve: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """Link and mention facets over ``text`` with UTF-8 byte offsets.

    Spec: app.bsky.richtext.facet — byteStart inclusive, byteEnd exclusive, in UTF-8 bytes.
    ``resolve`` gives a handle's DID, or None (then the mention stays plain text).
    """
    def span(start: int, end: int) -> dict[str, int]:
        return {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}

    found: list[dict[str, Any]] = []
    for m in _URL.finditer(text):
        found.append({"index": span(m.start(), m.end()),
                      "features": [{"$type": "app.bsky.richtext.facet#link", "uri": m.group(0)}]})
    for m in _MENTION.finditer(text):
        did = resolve(m.group(1).lower())
        if did:
            found.append({"index": span(m.start(), m.end()),
                          "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}]})
    return sorted(found, key=lambda f: f["index"]["byteStart"])


def _delivery_key(text: str, url: str, context: PostContext | None) -> str:
    key = getattr(context, "key", None)
    return str(key) if key else hashlib.sha256(f"{url}\n{text}".encode()).hexdigest()


def _get(obj: Any, *path: str) -> Any:
    """A field of an SDK model or of a plain dict, by its snake_case or lexicon name."""
    for name in path:
        if obj is None:
            return None
        if isinstance(obj, dict):
            camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
            obj = obj.get(name, obj.get(camel))
        else:
            obj = getattr(obj, name, None)
    return obj


def _links(record: Any) -> set[str]:
    found = {str(_get(record, "embed", "external", "uri") or "")}
    for facet in _get(record, "facets") or []:
        for feature in _get(facet, "features") or []:
            if _get(feature, "uri"):
                found.add(str(_get(feature, "uri")))
    return found - {""}


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def _error_name(exc: at.RequestErrorBase) -> str:
    return str(_get(getattr(exc.response, "content", None), "error") or "") if exc.response else ""


def _status(exc: at.RequestErrorBase) -> int:
    return int(exc.response.status_code) if exc.response is not None else 0


class BlueskyChannel:
    """Posts to one Bluesky account. One instance per process. Raises ``ConfigError`` when
    the handle or app password is missing."""

    max_weighted_length = BLUESKY_MAX_GRAPHEMES

    def __init__(self, settings: BlueskySettings, *, timeout: float = 10, name: str = "bluesky") -> None:
        if not settings.enabled:
            raise ConfigError("the Bluesky channel needs bluesky.handle and bluesky.app_password")
        assert settings.handle and settings.app_password
        self.name = name
        self._settings = settings
        self._handle = settings.handle.lstrip("@")
        self._client = Client(settings.service_url, request=Request(timeout=timeout, transport=_ErrorBodies()))
        self._client.on_session_change(self._keep_session)
        self._lock = threading.RLock()
        self._session: Session | None = None
        self._dids: dict[str, str | None] = {}

    # -- the Channel protocol ------------------------------------------------------------

    def post(self, text: str, *, url: str, context: PostContext | None = None,
             reply_to: str | None = None) -> PostResult:
        """Create the post under the delivery's record key, as a reply to the account's post
        ``reply_to`` (an ``at://`` URI) when given and still there. Raises ``RateLimited``,
        ``TransientChannelError``, ``RejectedPost`` (400: this post refused, e.g. over 300
        graphemes), ``AlreadyPosted`` (that key exists: an earlier attempt made it) or
        ``PermanentChannelError``."""
        rkey = record_key(_delivery_key(text, url, context), getattr(context, "occurred_at", None))
        article = getattr(context, "article", None)
        card, notes = self._card(url, article, getattr(context, "media", None))
        record: dict[str, Any] = {
            "$type": POST, "text": text, "createdAt": _now_iso(),
            "langs": [getattr(article, "language", None) or self._settings.language],
            "facets": self._call("resolving mentions", lambda: facets_for(text, self._did_of)),
            "embed": {"$type": "app.bsky.embed.external", "external": card},
        }
        if reply := self._reply_ref(reply_to):
            record["reply"] = reply
        try:
            created = self._call("posting", lambda: self._client.com.atproto.repo.create_record(
                models.ComAtprotoRepoCreateRecord.Data(repo=self._did(), collection=POST, rkey=rkey, record=record)))
        except (RateLimited, PermanentChannelError):
            raise
        except (TransientChannelError, RejectedPost) as exc:
            # The service answers a taken record key with an error (a 500 today: atproto
            # issue #3718); whether the key is taken says if an earlier attempt posted.
            if self._exists(POST, rkey):
                raise AlreadyPosted(f"Bluesky: record {rkey} exists; an earlier attempt posted it") from exc
            raise
        log.info("bluesky post made", extra={"channel": self.name, "remote_id": created.uri, "url": url})
        return PostResult(created.uri, self._web_url(created.uri), notes)

    def delete(self, remote_id: str, *, context: PostContext | None = None) -> None:
        """Delete a post by its ``at://`` URI; one already gone counts as deleted."""
        rkey = remote_id.rstrip("/").rsplit("/", 1)[-1]
        self._call("deleting", lambda: self._client.com.atproto.repo.delete_record(
            models.ComAtprotoRepoDeleteRecord.Data(repo=self._did(), collection=POST, rkey=rkey)))
        log.info("bluesky post deleted", extra={"channel": self.name, "remote_id": remote_id})

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        """The newest of the account's last 50 posts that links to ``url`` (and whose text is
        ``text``, links aside, when given), if any."""
        answer = self._call("reading recent posts", lambda: self._client.com.atproto.repo.list_records(
            models.ComAtprotoRepoListRecords.Params(repo=self._did(), collection=POST, limit=_RECENT_POSTS)))
        for item in answer.records or []:
            if any(_same_url(link, url) for link in _links(item.value)) and (
                    text is None or same_words(str(_get(item.value, "text") or ""), text)):
                return PostResult(item.uri, self._web_url(item.uri))
        return None

    def add_list_member(self, handle: str) -> None:
        """Add ``handle`` to the staff list: an ``app.bsky.graph.listitem`` record, keyed by
        list and member so that doing it again adds nothing. Raises ``RejectedPost`` for a
        handle that does not resolve."""
        list_uri = self._settings.staff_list_uri
        if not list_uri:
            return
        did = self._call("looking up a user", lambda: self._did_of(handle.strip().lstrip("@").lower()))
        if did is None:
            raise RejectedPost(f"Bluesky has no account @{handle.lstrip('@')}")
        rkey = record_key(f"{list_uri} {did}", None)
        if self._exists(LIST_ITEM, rkey):
            return
        item = {"$type": LIST_ITEM, "subject": did, "list": list_uri, "createdAt": _now_iso()}
        self._call("adding a list member", lambda: self._client.com.atproto.repo.create_record(
            models.ComAtprotoRepoCreateRecord.Data(repo=self._did(), collection=LIST_ITEM, rkey=rkey, record=item)))
        log.info("bluesky list member added", extra={"channel": self.name, "handle": handle, "list": list_uri})

    # -- the card ------------------------------------------------------------------------

    def _card(self, url: str, article: Any, media: Media | None) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The external embed (Spec: app.bsky.embed.external) and what the timeline should
        hear about its thumbnail: a failed one never blocks the post."""
        card: dict[str, Any] = {"uri": url, "title": str(getattr(article, "title", None) or ""),
                                "description": str(getattr(article, "summary", None) or "")[:1000]}
        if media is None:
            return card, ()
        try:
            card["thumb"] = self._thumb(media)
        except ChannelError as exc:
            log.warning("bluesky thumbnail left out", extra={"channel": self.name, "error": str(exc)})
            return card, (f"image not attached: {exc}",)
        return card, ()

    def _thumb(self, media: Media) -> dict[str, Any]:
        if not media.mime.startswith("image/") or len(media.data) > _THUMB_MAX_BYTES:
            raise RejectedPost(f"Bluesky: a thumbnail is an image of at most 1 MB, not {media.mime} "
                               f"of {len(media.data)} bytes")
        uploaded = self._call("uploading the thumbnail", lambda: self._client.com.atproto.repo.upload_blob(
            media.data, headers={"Content-Type": media.mime}))
        blob = uploaded.blob
        return {"$type": "blob", "ref": {"$link": str(blob.ref.link)}, "mimeType": blob.mime_type, "size": blob.size}

    # -- session -------------------------------------------------------------------------

    def _keep_session(self, event: Any, session: Session) -> None:
        """The SDK calls this on every login, import and refresh (its own, before a token
        expires, included): the session this channel and later builds of it use."""
        with self._lock:
            self._session = session.copy()
        with _sessions_lock:
            _sessions[(self._settings.service_url, self._handle)] = session.export()

    def _did(self) -> str:
        self._ensure_session()
        assert self._session is not None
        return str(self._session.did)

    def _ensure_session(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            with _sessions_lock:
                kept = _sessions.get((self._settings.service_url, self._handle))
            with self._translate("logging in"):
                if kept:
                    self._client.login(session_string=kept, fetch_bsky_profile=False)
                else:
                    self._login()

    def _login(self) -> None:
        assert self._settings.app_password
        self._client.login(self._handle, self._settings.app_password.get_secret_value(), fetch_bsky_profile=False)
        log.info("bluesky session created", extra={"channel": self.name})

    def _renew(self) -> None:
        """The refresh token for a new session; the app password only when that is refused."""
        with self._lock, self._translate("renewing the session"):
            session = self._session
            try:
                if session is None:
                    raise at.LoginRequiredError
                fresh = self._client.com.atproto.server.refresh_session(
                    headers={"Authorization": f"Bearer {session.refresh_jwt}"}, ignore_session_check=True)
                renewed = Session(fresh.handle, fresh.did, fresh.access_jwt, fresh.refresh_jwt, session.pds_endpoint)
                self._client.login(session_string=renewed.export(), fetch_bsky_profile=False)
                log.info("bluesky session renewed", extra={"channel": self.name})
            except (at.BadRequestError, at.UnauthorizedError, at.LoginRequiredError):
                self._login()

    def _call(self, action: str, request: Callable[[], Any]) -> Any:
        """Run ``request`` with a live session; once more after renewing a refused token."""
        self._ensure_session()
        try:
            with self._translate(action, renewable=True):
                return request()
        except _Renew:
            self._renew()
        with self._translate(action):
            return request()

    # -- internals -----------------------------------------------------------------------

    def _did_of(self, handle: str) -> str | None:
        with self._lock:
            if handle in self._dids:
                return self._dids[handle]
        try:
            did: str | None = self._client.com.atproto.identity.resolve_handle(
                models.ComAtprotoIdentityResolveHandle.Params(handle=handle)).did
        except at.BadRequestError:
            did = None  # Spec: resolveHandle — 400 for a handle that does not resolve.
        with self._lock:
            self._dids[handle] = did
        return did

    def _reply_ref(self, reply_to: str | None) -> dict[str, Any] | None:
        """Spec: app.bsky.feed.post#replyRef — root and parent are strong refs (uri and cid);
        the original post is both, as it answers nothing itself. An original that is gone
        (400 RecordNotFound) leaves the post on its own."""
        if not reply_to:
            return None
        rkey = reply_to.rstrip("/").rsplit("/", 1)[-1]
        try:
            found = self._call("reading the original post", lambda: self._client.com.atproto.repo.get_record(
                models.ComAtprotoRepoGetRecord.Params(repo=self._did(), collection=POST, rkey=rkey)))
        except RejectedPost:
            return None
        ref = {"uri": found.uri, "cid": found.cid}
        return {"root": ref, "parent": ref}

    def _exists(self, collection: str, rkey: str) -> bool:
        try:
            self._call("checking the record key", lambda: self._client.com.atproto.repo.get_record(
                models.ComAtprotoRepoGetRecord.Params(repo=self._did(), collection=collection, rkey=rkey)))
        except RejectedPost:
            return False  # Spec: getRecord — 400 RecordNotFound.
        return True

    def _web_url(self, uri: str) -> str:
        return f"https://bsky.app/profile/{self._handle}/post/{uri.rstrip('/').rsplit('/', 1)[-1]}"

    @contextmanager
    def _translate(self, action: str, *, renewable: bool = False) -> Iterator[None]:
        """Turn atproto SDK and httpx failures into syndication errors."""
        try:
            yield
        except at.RateLimitExceededError as exc:
            now = datetime.now(timezone.utc)
            retry_at = exc.reset_at or (now + timedelta(seconds=exc.retry_after) if exc.retry_after else None)
            retry_at = retry_at if retry_at and retry_at > now else now + _RATE_LIMIT_FALLBACK
            raise RateLimited(f"Bluesky: rate limited while {action}; retry at {retry_at.isoformat()}",
                              retry_at=retry_at) from exc
        except (at.UnauthorizedError, at.BadRequestError) as exc:
            if renewable and _error_name(exc) in _TOKEN_ERRORS:
                raise _Renew from exc
            if isinstance(exc, at.UnauthorizedError):
                raise PermanentChannelError(f"Bluesky: credentials refused while {action}: {exc}") from exc
            # Spec: XRPC errors — a 400 names what was wrong with this request (InvalidRequest,
            # InvalidRecord...): the delivery fails, the account goes on.
            raise RejectedPost(f"Bluesky: refused while {action}: {exc}", explained=bool(_error_name(exc))) from exc
        except at.NetworkError as exc:  # transport failures, and 409, 413, 502
            raise TransientChannelError(f"Bluesky: network failure while {action}: {str(exc) or type(exc).__name__}") from exc
        except at.RequestException as exc:
            status = _status(exc)
            if status >= 500 or status == 408:
                raise TransientChannelError(f"Bluesky: server error while {action}: {exc}") from exc
            raise RejectedPost(f"Bluesky: refused while {action}: {exc}", explained=False) from exc
        except httpx.TransportError as exc:  # the SDK lets a dropped connection through as it is
            raise TransientChannelError(f"Bluesky: network failure while {action}: {type(exc).__name__}") from exc
        except at.ModelError as exc:
            raise TransientChannelError(f"Bluesky: unreadable answer while {action}") from exc
        except at.AtProtocolError as exc:
            raise PermanentChannelError(f"Bluesky: the SDK refused while {action}: {type(exc).__name__}") from exc


class _ErrorBodies(httpx.HTTPTransport):
    """Empties an error answer whose body is JSON but no object (``[1, 2]``, ``"x"``): the
    SDK would fail to read it as an XRPC error and raise a bare ``ModelError`` that hides
    the status. Emptied, it is a plain "400" (or whatever the status was)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if response.status_code < 400:
            return response
        body = response.read()
        try:
            readable = not isinstance(json.loads(body), (list, str, int, float, bool))
        except ValueError:
            readable = True  # not JSON at all: the SDK keeps it as bytes
        if readable:
            return response
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")]
        return httpx.Response(response.status_code, headers=headers, content=b"", request=request)


class _Renew(Exception):
    """The service refused the session's token: renew it and try once more."""


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# This kind, as the registry (``syndication.channels.registry.CHANNEL_KINDS``) loads it.
KIND = ChannelKind(settings=BlueskySettings, rules=BLUESKY_RULES, media=True,
                   build=lambda a: BlueskyChannel(a.settings, name=a.name),
                   staff_list=lambda s: s.staff_list_uri, configured=lambda s: s.enabled)
