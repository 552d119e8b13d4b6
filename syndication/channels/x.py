"""The X channel: the only module that imports tweepy.

It posts with OAuth 1.0a user context (the account's own access token) through
``tweepy.Client`` and turns every tweepy and requests failure into an error of
``syndication.errors``, each with ``raise ... from exc``.

Two things tweepy does not do are done by an HTTP adapter mounted on the client's
session, so tweepy itself is used unpatched:

* tweepy builds every URL from the fixed host ``https://api.twitter.com``
  (``BaseClient.request``) and has no setting for another one (tweepy PR #1971 was never
  merged). When ``api_base_url`` names something else (the local stand-in, a staging
  proxy), the adapter sends the request there instead.
* tweepy passes no timeout to requests, so a stalled connection hangs a worker for good
  (tweepy issue #2024, PR #2027 still open). The adapter supplies one.

Usage::

    channel = XChannel(settings.x)
    result = channel.post("Headline https://news.example.org/a1", url="https://news.example.org/a1")
"""
from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import tweepy
from pydantic import BaseModel, SecretStr
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from syndication.channels.base import (
    ChannelKind,
    Media,
    PostContext,
    PostResult,
    PostRules,
    attach_media,
    same_url,
    same_words,
    social_handle,
)
from syndication.channels.counting import weighted_length
from syndication.errors import (
    AlreadyPosted,
    ConfigError,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)

log = logging.getLogger(__name__)

X_API_BASE_URL = "https://api.x.com"
# tweepy 4.x hard-codes this host in BaseClient.request, and API (v1.1) uploads media to the second.
TWEEPY_HOST = "https://api.twitter.com"
TWEEPY_UPLOAD_HOST = "https://upload.twitter.com"
# Spec: X API v1.1 POST media/metadata/create — alt text is at most 1,000 characters.
_ALT_TEXT_MAX = 1000
_REAL_HOSTS = {"api.twitter.com", "api.x.com"}
# Spec: X API v2 POST /2/tweets — a 403 whose detail says this means the text was posted before.
_DUPLICATE = "duplicate content"
_RATE_LIMIT_FALLBACK = timedelta(seconds=60)
# Spec: X API v2 GET /2/users/:id/tweets — max_results is 5..100, newest first.
_RECENT_POSTS = 100


class XSettings(BaseModel):
    """One X account (SYNDICATION_X__*, or SYNDICATION_<ACCOUNT>__* for another): it posts when
    all four credentials are set."""

    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    staff_list_id: str | None = None
    api_base_url: str = X_API_BASE_URL

    @property
    def enabled(self) -> bool:
        return all((self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret))


# Spec: X usernames — 1 to 15 letters, digits or underscores. A mention is "@" and the name.
X_RULES = PostRules(length=weighted_length, handle=social_handle("x", r"[A-Za-z0-9_]{1,15}"))


class _ApiAdapter(HTTPAdapter):
    """Sends tweepy's requests to ``base_url`` (when given) with a default timeout.

    The OAuth 1.0a signature is computed by requests before the adapter runs, over the
    ``api.twitter.com`` URL: a server that checks signatures against its own host would
    refuse it. The stand-in only checks that a signature is there.
    """

    def __init__(self, *, base_url: str | None, timeout: float) -> None:
        super().__init__(max_retries=0)  # Retrying a POST could post twice; callers decide.
        self._base = urlsplit(base_url) if base_url else None
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, stream: bool = False,  # type: ignore[override]
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Mapping[str, str] | None = None) -> requests.Response:
        if self._base is not None and request.url:
            request.url = self._rewrite(request.url)
            # requests chose proxies for api.twitter.com; choose again for the real target
            # so NO_PROXY=127.0.0.1 and the like still apply.
            proxies = get_environ_proxies(request.url)
        response = super().send(request, stream=stream, timeout=self._timeout if timeout is None else timeout,
                                verify=verify, cert=cert, proxies=proxies)
        # tweepy does int() on this header before raising TooManyRequests; a malformed
        # value would escape as a bare ValueError. Drop it so the fallback applies.
        reset = response.headers.get("x-rate-limit-reset")
        if reset is not None and not reset.strip().isdigit():
            del response.headers["x-rate-limit-reset"]
        if response.status_code >= 400 and not _json_object(response):
            # tweepy calls .get() on an error body it could parse: a JSON list or string would
            # escape as a bare AttributeError. Emptied, it reads as "400 Bad Request".
            response._content = b""
        return response

    def _rewrite(self, url: str) -> str:
        assert self._base is not None
        parts = urlsplit(url)
        path = self._base.path.rstrip("/") + parts.path
        return urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, parts.fragment))


def _redirect_target(api_base_url: str) -> str | None:
    """The base URL to send requests to, or None when it is the real API."""
    parts = urlsplit(api_base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"x.api_base_url must be an absolute http(s) URL, not {api_base_url!r}")
    if parts.scheme == "https" and parts.hostname in _REAL_HOSTS and parts.path.strip("/") == "":
        return None
    return api_base_url.strip()


def _json_object(response: requests.Response) -> bool:
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def _status(exc: tweepy.HTTPException) -> int:
    return int(getattr(exc.response, "status_code", 0) or 0)


def _explain(exc: tweepy.HTTPException) -> str:
    """Status and X's own messages; never headers or the request, which carry OAuth data."""
    messages = "; ".join(str(m) for m in exc.api_messages) or _detail(exc) or getattr(exc.response, "reason", "") or ""
    return f"{_status(exc)} {messages}".strip()


def _detail(exc: tweepy.HTTPException) -> str:
    """A problem's ``detail`` (Spec: X API v2 errors — RFC 7807 problem details), if X gave one."""
    try:
        body = exc.response.json()
    except (ValueError, AttributeError):
        return ""
    return str(body.get("detail") or "")[:500] if isinstance(body, dict) else ""


def _said_why(exc: tweepy.HTTPException) -> bool:
    """Whether X said what was wrong with the request: its ``errors`` messages or a detail."""
    return bool(exc.api_messages or _detail(exc))


def _header_time(headers: Mapping[str, str], name: str) -> datetime | None:
    value = (headers.get(name) or "").strip()
    return datetime.fromtimestamp(int(value), timezone.utc) if value.isdigit() else None


def _retry_at(exc: tweepy.TooManyRequests, now: datetime) -> datetime:
    """When the exhausted limit resets.

    Spec: X API rate limits — ``x-rate-limit-reset`` is the epoch second the 15-minute
    window resets. The daily posting caps report their own ``x-user-limit-24hour-*`` and
    ``x-app-limit-24hour-*`` headers; when one of those is at zero its reset is the one
    that counts (tweepy only reads the first: ``TooManyRequests.reset_time``).
    """
    headers = getattr(exc.response, "headers", None) or {}
    candidates = [_header_time(headers, "x-rate-limit-reset")]
    for prefix in ("x-user-limit-24hour", "x-app-limit-24hour"):
        if (headers.get(f"{prefix}-remaining") or "").strip() == "0":
            candidates.append(_header_time(headers, f"{prefix}-reset"))
    known = [c for c in candidates if c is not None]
    return max(known) if known else now + _RATE_LIMIT_FALLBACK


def _status_url(tweet_id: str) -> str:
    # Works without knowing the account's username, so posting needs no extra request.
    return f"https://x.com/i/web/status/{tweet_id}"


def _links_to(tweet: Mapping[str, Any], url: str) -> bool:
    """Whether a tweet carries ``url``: in its text, or behind a t.co link.

    Spec: X API v2 Tweet object — links in ``text`` are replaced by t.co URLs; the
    original is in ``entities.urls[].expanded_url`` (and ``unwound_url`` when known).
    """
    # Whole links only: ".../a/x1" must not match a post linking ".../a/x10".
    if any(same_url(word, url) for word in (tweet.get("text") or "").split() if "://" in word):
        return True
    for entity in (tweet.get("entities") or {}).get("urls") or []:
        for key in ("expanded_url", "unwound_url"):
            if entity.get(key) and same_url(entity[key], url):
                return True
    return False


class XChannel:
    """Posts to one X account with OAuth 1.0a user context.

    Raises ``ConfigError`` when a credential is missing or ``api_base_url`` is not a URL.
    One instance per process; it caches the account's and staff members' user ids.
    """

    max_weighted_length = 280  # Spec: X counting characters — weighted length 280.

    def __init__(self, settings: XSettings, *, timeout: float = 10, name: str = "x") -> None:
        if not settings.enabled:
            raise ConfigError("the X channel needs x.consumer_key, x.consumer_secret, "
                              "x.access_token and x.access_token_secret")
        assert settings.consumer_key and settings.consumer_secret
        assert settings.access_token and settings.access_token_secret
        self.name = name
        self._list_id = settings.staff_list_id or None
        self._client = tweepy.Client(
            consumer_key=settings.consumer_key.get_secret_value(),
            consumer_secret=settings.consumer_secret.get_secret_value(),
            access_token=settings.access_token.get_secret_value(),
            access_token_secret=settings.access_token_secret.get_secret_value(),
            # Plain JSON: tweepy's Tweet model warns or fails on fields it expects.
            return_type=dict,
            # Never sleep inside a worker; RateLimited hands the wait to the scheduler.
            wait_on_rate_limit=False,
        )
        adapter = _ApiAdapter(base_url=_redirect_target(settings.api_base_url), timeout=timeout)
        self._client.session.mount(TWEEPY_HOST + "/", adapter)
        # Media upload is only in tweepy's v1.1 API (Client has none in 4.x); same account, same adapter.
        self._api = tweepy.API(tweepy.OAuth1UserHandler(
            settings.consumer_key.get_secret_value(), settings.consumer_secret.get_secret_value(),
            settings.access_token.get_secret_value(), settings.access_token_secret.get_secret_value()),
            timeout=timeout, wait_on_rate_limit=False)
        self._api.session.mount(TWEEPY_UPLOAD_HOST + "/", adapter)
        self._lock = threading.Lock()
        self._my_id: str | None = None
        self._user_ids: dict[str, str] = {}

    # -- the Channel protocol ------------------------------------------------------------

    def post(self, text: str, *, url: str, context: PostContext | None = None,
             reply_to: str | None = None) -> PostResult:
        """Create a post, as a reply to the account's post ``reply_to`` when given. Raises
        ``RateLimited``, ``TransientChannelError`` (5xx, network: the outcome may be unknown,
        see ``find_post``), ``AlreadyPosted`` (X refused the text as a duplicate) or
        ``PermanentChannelError``."""
        media_ids, notes = attach_media(context, self._upload)
        with self._translate("posting"):
            # Spec: X API v2 POST /2/tweets — 201 {"data": {"id", "text"}}; media.media_ids attaches
            # uploads; a reply carries {"reply": {"in_reply_to_tweet_id": ...}}.
            body = self._client.create_tweet(text=text, media_ids=media_ids, in_reply_to_tweet_id=reply_to,
                                             user_auth=True)
        tweet_id = str(((body or {}).get("data") or {}).get("id") or "")
        if not tweet_id:
            raise TransientChannelError("X: POST /2/tweets answered without a tweet id; outcome unknown")
        log.info("x post made", extra={"channel": self.name, "remote_id": tweet_id, "url": url})
        return PostResult(tweet_id, _status_url(tweet_id), notes)

    def delete(self, remote_id: str, *, context: PostContext | None = None) -> None:
        """Delete a post; one X no longer has counts as deleted."""
        with self._translate("deleting"):
            try:
                # Spec: X API v2 DELETE /2/tweets/:id — {"data": {"deleted": true}}.
                body = self._client.delete_tweet(remote_id, user_auth=True)
            except tweepy.NotFound:
                log.info("x post already gone", extra={"channel": self.name, "remote_id": remote_id})
                return
        if not ((body or {}).get("data") or {}).get("deleted"):
            log.warning("x did not confirm the deletion", extra={"channel": self.name, "remote_id": remote_id})
            return
        log.info("x post deleted", extra={"channel": self.name, "remote_id": remote_id})

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        """The newest of the account's last 100 posts that links to ``url`` (and whose text is
        ``text``, links aside, when given), if any."""
        user_id = self._authenticated_user_id()
        with self._translate("reading recent posts"):
            body = self._client.get_users_tweets(
                user_id, max_results=_RECENT_POSTS, tweet_fields=["created_at", "entities"],
                # tweepy's default here is user_auth=False, which sends "Bearer None".
                user_auth=True,
            )
        for tweet in (body or {}).get("data") or []:
            if _links_to(tweet, url) and (text is None or same_words(tweet.get("text") or "", text)):
                return PostResult(str(tweet["id"]), _status_url(str(tweet["id"])))
        return None

    def add_list_member(self, handle: str) -> None:
        """Add ``handle`` to the staff list when ``staff_list_id`` is set; else nothing.

        Raises ``PermanentChannelError`` when X has no such account.
        """
        if not self._list_id:
            return
        user_id = self._user_id(handle.lstrip("@"))
        with self._translate("adding a list member"):
            # Spec: X API v2 POST /2/lists/:id/members — {"data": {"is_member": true}}.
            self._client.add_list_member(self._list_id, user_id, user_auth=True)
        log.info("x list member added", extra={"channel": self.name, "handle": handle, "list_id": self._list_id})

    # -- internals -----------------------------------------------------------------------

    def _upload(self, media: Media) -> str:
        """Upload an image and set its alt text; returns the media id. Raises channel errors."""
        with self._translate("uploading an image"):
            # Spec: X API v1.1 POST media/upload (simple upload, images up to 5 MB).
            uploaded = self._api.simple_upload(filename="image", file=io.BytesIO(media.data))
        media_id = str(getattr(uploaded, "media_id_string", "") or "")
        if not media_id:
            raise PermanentChannelError("X: media/upload answered without a media id")
        if media.alt:
            with self._translate("adding alt text"):
                self._api.create_media_metadata(media_id, media.alt[:_ALT_TEXT_MAX])
        return media_id

    def _authenticated_user_id(self) -> str:
        with self._lock:
            if self._my_id is not None:
                return self._my_id
        with self._translate("looking up the account"):
            body = self._client.get_me(user_auth=True)
        user_id = str(((body or {}).get("data") or {}).get("id") or "")
        if not user_id:
            raise PermanentChannelError("X: GET /2/users/me returned no user")
        with self._lock:
            self._my_id = user_id
        return user_id

    def _user_id(self, handle: str) -> str:
        key = handle.casefold()
        with self._lock:
            if key in self._user_ids:
                return self._user_ids[key]
        with self._translate("looking up a user"):
            body = self._client.get_user(username=handle, user_auth=True)
        data = (body or {}).get("data")
        if not data:
            # Spec: X API v2 GET /2/users/by/username/:username — an unknown name is a
            # 200 with an "errors" array and no "data".
            raise PermanentChannelError(f"X has no account @{handle}")
        with self._lock:
            self._user_ids[key] = str(data["id"])
        return str(data["id"])

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn tweepy and requests failures into syndication errors."""
        try:
            yield
        except tweepy.TooManyRequests as exc:
            retry_at = _retry_at(exc, datetime.now(timezone.utc))
            raise RateLimited(f"X: rate limited while {action}; retry at {retry_at.isoformat()}",
                              retry_at=retry_at) from exc
        except tweepy.TwitterServerError as exc:
            raise TransientChannelError(f"X: server error while {action}: {_explain(exc)}") from exc
        except tweepy.Forbidden as exc:
            if any(_DUPLICATE in str(m).lower() for m in exc.api_messages):
                raise AlreadyPosted(f"X: refused as a duplicate while {action}") from exc
            raise PermanentChannelError(f"X: forbidden while {action}: {_explain(exc)}") from exc
        except tweepy.Unauthorized as exc:
            raise PermanentChannelError(f"X: credentials refused while {action}: {_explain(exc)}") from exc
        except tweepy.HTTPException as exc:
            if _status(exc) == 408:
                raise TransientChannelError(f"X: request timeout while {action}") from exc
            if _status(exc) == 410:
                raise PermanentChannelError(f"X: gone while {action}: {_explain(exc)}") from exc
            if 400 <= _status(exc) < 500:
                # Spec: X API v2 errors — 400 "Invalid Request" names the refused parameter. About
                # this one request: the delivery fails, the account goes on.
                explained = _status(exc) in (400, 422) and _said_why(exc)
                raise RejectedPost(f"X: refused while {action}: {_explain(exc)}", explained=explained) from exc
            raise PermanentChannelError(f"X: refused while {action}: {_explain(exc)}") from exc
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError, requests.exceptions.JSONDecodeError) as exc:
            raise TransientChannelError(f"X: network failure while {action}: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise PermanentChannelError(f"X: cannot send the request while {action}: {type(exc).__name__}") from exc
        except tweepy.TweepyException as exc:
            raise PermanentChannelError(f"X: tweepy refused while {action}: {type(exc).__name__}") from exc


# This kind, as the registry (``syndication.channels.registry.CHANNEL_KINDS``) loads it.
KIND = ChannelKind(settings=XSettings, rules=X_RULES, build=lambda a: XChannel(a.settings, name=a.name),
                   staff_list=lambda s: s.staff_list_id, configured=lambda s: s.enabled, media=True)
