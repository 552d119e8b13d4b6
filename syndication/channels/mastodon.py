"""The Mastodon channel: the only module that imports Mastodon.py (``mastodon``).

It posts as one account with its access token and turns every Mastodon.py failure into an
error of ``syndication.errors``, each with ``raise ... from exc`` (``_translate``).

Usage::

    channel = MastodonChannel(MastodonSettings(api_base_url="https://mastodon.example",
                                               access_token="..."))
    result = channel.post("Headline https://news.example.org/a1", url="https://news.example.org/a1")
"""
from __future__ import annotations

import hashlib
import html
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

import mastodon
import regex
from pydantic import BaseModel, SecretStr, field_validator, model_validator

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
from syndication.errors import (
    ConfigError,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    TransientChannelError,
)

log = logging.getLogger(__name__)

# Spec: Mastodon API, POST /api/v1/statuses — 500 characters unless the instance says
# otherwise (GET /api/v2/instance: configuration.statuses.max_characters).
MASTODON_MAX_CHARACTERS = 500
# Spec: same — configuration.statuses.characters_reserved_per_url, 23 on Mastodon.
MASTODON_URL_LENGTH = 23
# Spec: Mastodon handles — "@username@domain"; the username is letters, digits and "_".
MASTODON_HANDLE = r"@?[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?"
_RATE_LIMIT_FALLBACK = timedelta(seconds=60)
# Spec: GET /api/v1/accounts/:id/statuses — limit defaults to 20, at most 40, newest first.
_RECENT_POSTS = 40
_VISIBILITIES = ("public", "unlisted", "private", "direct")

# Mastodon's own rule (app/validators/status_length_validator.rb): every http(s) link counts
# as 23 characters and a remote mention only by its "@username".
_URL = re.compile(r"(?<![\w/])https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'’”]")
_REMOTE_MENTION = re.compile(r"(?<![\w@])(@[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_HREF = re.compile(r'href="([^"]+)"')
# Spec: POST /api/v2/media — description (alt text) up to 1,500 characters.
_ALT_TEXT_MAX = 1500


def mastodon_length(text: str) -> int:
    """The length Mastodon counts for ``text``: user-perceived characters, each link as 23,
    each ``@user@domain`` mention as ``@user``.

    >>> mastodon_length("Read https://news.example.org/" + "a" * 80)
    28
    """
    text = _URL.sub("x" * MASTODON_URL_LENGTH, text)
    text = _REMOTE_MENTION.sub(lambda m: m.group(1), text)
    return len(regex.findall(r"\X", text))


MASTODON_RULES = PostRules(length=mastodon_length, handle=social_handle("mastodon", MASTODON_HANDLE))


class MastodonSettings(BaseModel):
    """One Mastodon account (SYNDICATION_MASTODON__*): it posts when ``api_base_url`` and
    ``access_token`` are set. ``language`` is used when the article names none;
    ``max_characters`` skips asking the instance for its status length."""

    api_base_url: str | None = None
    access_token: SecretStr | None = None
    staff_list_id: str | None = None
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    language: str = "en"
    max_characters: int | None = None  # the instance's limit when it is known; else asked once

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        # The compose file passes every variable, empty when the operator set none.
        return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data

    @field_validator("api_base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an absolute http(s) URL such as https://mastodon.example")
        return value.strip().rstrip("/")

    @property
    def enabled(self) -> bool:
        return bool(self.api_base_url and self.access_token and self.access_token.get_secret_value())


def idempotency_key(text: str, url: str, context: PostContext | None) -> str:
    """The delivery's own key when the caller gives one (the same on every attempt), else one
    drawn from what is posted, which is the same on every attempt too."""
    key = getattr(context, "key", None)
    if key:
        return str(key)
    return hashlib.sha256(f"{url}\n{text}".encode()).hexdigest()


def _language(context: PostContext | None, default: str) -> str:
    # Spec: POST /api/v1/statuses — language is an ISO 639-1 code; "pt-BR" is sent as "pt".
    article = getattr(context, "article", None)
    tag = getattr(article, "language", None) or default
    return tag.split("-")[0].lower()


def _status_code(exc: mastodon.MastodonAPIError) -> int:
    # Mastodon.py raises MastodonAPIError("Mastodon API returned error", status, reason, error).
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0


def _said(exc: mastodon.MastodonAPIError) -> str:
    """Mastodon's own ``error`` text, when the body had one; never headers or the token."""
    said = exc.args[3] if len(exc.args) > 3 and isinstance(exc.args[3], str) else ""
    return said[:500]


def _explain(exc: mastodon.MastodonAPIError) -> str:
    reason = exc.args[2] if len(exc.args) > 2 and isinstance(exc.args[2], str) else ""
    return f"{_status_code(exc)} {_said(exc) or reason}".strip()


def _plain(status: Any) -> str:
    """A status's text: Mastodon answers it as HTML, a link's scheme and the rest of it in
    separate spans, paragraphs and line breaks as tags."""
    content = re.sub(r"<br\s*/?>|</p>", " ", str(status.get("content") or ""))
    return html.unescape(re.sub(r"<[^>]+>", "", content))


def _local_mentions(text: str) -> str:
    """``text`` as Mastodon shows it: a mention without its instance (``@name@host`` as ``@name``)."""
    return re.sub(r"(@\w+)@[\w.-]+", r"\1", text)


def _links(status: Any) -> set[str]:
    found = {html.unescape(h) for h in _HREF.findall(str(status.get("content") or ""))}
    card = status.get("card") or {}
    if card.get("url"):
        found.add(str(card["url"]))
    return found


class MastodonChannel:
    """Posts to one Mastodon account. One instance per process (it caches the account id and
    the instance's status length). Raises ``ConfigError`` when the URL or token is missing."""

    def __init__(self, settings: MastodonSettings, *, timeout: float = 10, name: str = "mastodon") -> None:
        if not settings.enabled:
            raise ConfigError("the Mastodon channel needs mastodon.api_base_url and mastodon.access_token")
        assert settings.api_base_url and settings.access_token
        self.name = name
        self._settings = settings
        self._client = mastodon.Mastodon(
            api_base_url=settings.api_base_url,
            access_token=settings.access_token.get_secret_value(),
            # Never sleep inside a worker: RateLimited hands the wait to the scheduler.
            ratelimit_method="throw",
            request_timeout=timeout,
            # No request at construction: the endpoints used exist since Mastodon 4.0, and
            # saying so makes media go to /api/v2/media without asking the version.
            mastodon_version="4.0.0",
            version_check_mode="created",
        )
        self._lock = threading.Lock()
        self._my_id: str | None = None
        self._max_characters: int | None = None

    @property
    def max_weighted_length(self) -> int:
        """The instance's ``max_characters``: ``max_characters`` from the settings, else what
        the instance said when this process first posted, else 500.

        Never a request here: posts are composed inside a database transaction. 500 until
        the instance is asked is safe on stock Mastodon, where no instance allows fewer."""
        return self._settings.max_characters or self._max_characters or MASTODON_MAX_CHARACTERS

    def _learn_limit(self) -> None:
        """Ask the instance for its status length once per process; a failure leaves 500."""
        with self._lock:
            if self._settings.max_characters or self._max_characters is not None:
                return
            self._max_characters = 0  # asked: whatever happens, not again
        try:
            with self._translate("reading the instance's limits"):
                info = self._client.instance_v2()
        except (TransientChannelError, PermanentChannelError, RejectedPost) as exc:
            log.warning("mastodon instance limits unknown; using 500", extra={"channel": self.name, "error": str(exc)})
            return
        found = ((info.get("configuration") or {}).get("statuses") or {}).get("max_characters")
        if isinstance(found, int) and found > 0:
            with self._lock:
                self._max_characters = found

    # -- the Channel protocol ------------------------------------------------------------

    def post(self, text: str, *, url: str, context: PostContext | None = None,
             reply_to: str | None = None) -> PostResult:
        """Create a status with the account's visibility and the article's language, as a reply
        to the account's status ``reply_to`` when given.

        The ``Idempotency-Key`` is the delivery's key, so a retry after a lost answer gets
        the status made the first time (Mastodon keeps keys for an hour; after that
        ``find_post`` settles it). Raises ``RateLimited``, ``TransientChannelError``,
        ``RejectedPost`` (400/422: this status refused) or ``PermanentChannelError``.
        """
        self._learn_limit()
        media_ids, notes = attach_media(context, self._upload)
        with self._translate("posting"):
            status = self._client.status_post(
                text, visibility=self._settings.visibility, media_ids=media_ids, in_reply_to_id=reply_to,
                language=_language(context, self._settings.language),
                idempotency_key=idempotency_key(text, url, context))
        status_id = str(status.get("id") or "")
        if not status_id:
            raise TransientChannelError("Mastodon: POST /api/v1/statuses answered without an id; outcome unknown")
        log.info("mastodon post made", extra={"channel": self.name, "remote_id": status_id, "url": url})
        return PostResult(status_id, str(status.get("url") or status.get("uri") or ""), notes)

    def delete(self, remote_id: str, *, context: PostContext | None = None) -> None:
        """Delete a status; one the instance no longer has counts as deleted."""
        with self._translate("deleting"):
            try:
                self._client.status_delete(remote_id)
            except mastodon.MastodonNotFoundError:
                log.info("mastodon post already gone", extra={"channel": self.name, "remote_id": remote_id})
                return
        log.info("mastodon post deleted", extra={"channel": self.name, "remote_id": remote_id})

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        """The newest of the account's last 40 statuses that links to ``url`` (and whose text is
        ``text``, links and mentions aside, when given), if any."""
        my_id = self._account_id()
        with self._translate("reading recent posts"):
            statuses = self._client.account_statuses(my_id, limit=_RECENT_POSTS, exclude_reblogs=True)
        for status in statuses or []:
            if any(same_url(link, url) for link in _links(status)) and (
                    text is None or same_words(_plain(status), _local_mentions(text))):
                return PostResult(str(status["id"]), str(status.get("url") or status.get("uri") or ""))
        return None

    def add_list_member(self, handle: str) -> None:
        """Follow ``handle`` if the account does not yet, then add it to the staff list.

        Spec: POST /api/v1/lists/:id/accounts — only accounts you follow can be added.
        Raises ``RejectedPost`` for an unknown account or a follow still awaiting approval.
        """
        list_id = self._settings.staff_list_id
        if not list_id:
            return
        acct = handle.strip().lstrip("@")
        with self._translate("looking up a user"):
            try:
                account = self._client.account_lookup(acct)
            except mastodon.MastodonNotFoundError:
                raise RejectedPost(f"Mastodon has no account @{acct}") from None
        account_id = str(account["id"])
        with self._translate("following a staff member"):
            relationships = self._client.account_relationships([account_id])
            relation = relationships[0] if relationships else {}
            if not relation.get("following"):
                relation = self._client.account_follow(account_id)
        if not relation.get("following"):
            raise RejectedPost(f"Mastodon: @{acct} has not accepted the follow yet; the list add waits")
        with self._translate("adding a list member"):
            try:
                self._client.list_accounts_add(list_id, [account_id])
            except mastodon.MastodonAPIError as exc:
                # Spec: a second add is 422 "Account has already been taken": it is on the list.
                if _status_code(exc) != 422 or "taken" not in _said(exc):
                    raise
        log.info("mastodon list member added", extra={"channel": self.name, "handle": acct, "list_id": list_id})

    # -- internals -----------------------------------------------------------------------

    def _upload(self, media: Media) -> str:
        """Upload an image with its alt text; returns the media id. Raises channel errors."""
        with self._translate("uploading the image"):
            # Spec: POST /api/v2/media — an image is processed at once (200 with its id).
            uploaded = self._client.media_post(media.data, mime_type=media.mime,
                                               description=(media.alt or "")[:_ALT_TEXT_MAX] or None)
        media_id = str(uploaded.get("id") or "")
        if not media_id:
            raise TransientChannelError("Mastodon: POST /api/v2/media answered without an id")
        return media_id

    def _account_id(self) -> str:
        with self._lock:
            if self._my_id is not None:
                return self._my_id
        with self._translate("looking up the account"):
            me = self._client.account_verify_credentials()
        with self._lock:
            self._my_id = str(me["id"])
            return self._my_id

    def _retry_at(self, now: datetime) -> datetime:
        """When the exhausted limit resets: Mastodon.py keeps ``X-RateLimit-Reset`` (an ISO
        8601 time, corrected by the server's ``Date``) as epoch seconds; 429s carry no more."""
        reset = getattr(self._client, "ratelimit_reset", None)
        if isinstance(reset, (int, float)) and reset > now.timestamp():
            return datetime.fromtimestamp(reset, timezone.utc)
        return now + _RATE_LIMIT_FALLBACK

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn Mastodon.py failures into syndication errors."""
        try:
            yield
        except mastodon.MastodonRatelimitError as exc:
            retry_at = self._retry_at(datetime.now(timezone.utc))
            raise RateLimited(f"Mastodon: rate limited while {action}; retry at {retry_at.isoformat()}",
                              retry_at=retry_at) from exc
        except mastodon.MastodonNetworkError as exc:
            raise TransientChannelError(f"Mastodon: network failure while {action}: {type(exc).__name__}") from exc
        except mastodon.MastodonServerError as exc:
            raise TransientChannelError(f"Mastodon: server error while {action}: {_explain(exc)}") from exc
        except mastodon.MastodonUnauthorizedError as exc:
            raise PermanentChannelError(f"Mastodon: access token refused while {action}: {_explain(exc)}") from exc
        except mastodon.MastodonAPIError as exc:
            status = _status_code(exc)
            if status == 0:
                # A 2xx whose body was not JSON: whatever happened is unknown.
                raise TransientChannelError(f"Mastodon: unreadable answer while {action}") from exc
            if status == 408:
                raise TransientChannelError(f"Mastodon: request timeout while {action}") from exc
            if status in (403, 410):
                # 403: the token lacks the scope, or the account is suspended or disabled.
                raise PermanentChannelError(f"Mastodon: refused the account while {action}: {_explain(exc)}") from exc
            # Spec: Mastodon API errors — 422 "Validation failed: ..." and 400 name what
            # was wrong with this request: the delivery fails, the account goes on.
            explained = status in (400, 422) and bool(_said(exc))
            raise RejectedPost(f"Mastodon: refused while {action}: {_explain(exc)}", explained=explained) from exc
        except mastodon.MastodonError as exc:
            raise PermanentChannelError(f"Mastodon: Mastodon.py refused while {action}: {type(exc).__name__}") from exc


# This kind, as the registry (``syndication.channels.registry.CHANNEL_KINDS``) loads it.
KIND = ChannelKind(settings=MastodonSettings, rules=MASTODON_RULES, media=True,
                   build=lambda a: MastodonChannel(a.settings, name=a.name),
                   staff_list=lambda s: s.staff_list_id, configured=lambda s: s.enabled)
