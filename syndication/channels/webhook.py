"""The outgoing webhook channel: signed JSON POSTs to a newsroom's own endpoint (Standard Webhooks).

The only module that imports ``standardwebhooks``; it sends with ``requests``. Each delivery is
one message::

    POST <url>
    webhook-id: msg_<the delivery's key>        (the same on every retry of one delivery)
    webhook-timestamp: <epoch seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

    {"type": "article.published", "timestamp": "2026-05-01T09:30:00+00:00",
     "data": {"article": {...the public fields...}, "text": "<the composed post>"}}

Spec: Standard Webhooks 1.0 — "Webhook metadata" (the three headers; the id is the idempotency
key, unchanged across retries), "Signature scheme" (symmetric ``whsec_`` base64 secret, ``v1,``
prefix), "Payload structure" (``type``, ``timestamp``, ``data``) and "Responding": a 2xx is
success, 410 Gone means "disable this endpoint", 429 carries Retry-After, other failures retry.

Usage::

    channel = WebhookChannel(WebhookSettings(url="https://hooks.example/in", secret="whsec_..."))
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, Field, SecretStr, field_validator
from standardwebhooks import Webhook

from syndication.articles import Article
from syndication.channels.base import ChannelKind, PostContext, PostResult, PostRules
from syndication.errors import PermanentChannelError, RateLimited, RejectedPost, TransientChannelError

log = logging.getLogger(__name__)
_RETRY_AFTER_FALLBACK = timedelta(seconds=60)
_RETRY_AFTER_CAP = timedelta(hours=24)
# A webhook has no length limit of its own; this keeps a runaway template from sending megabytes.
WEBHOOK_MAX_LENGTH = 10_000
WEBHOOK_RULES = PostRules(length=len)


class WebhookSettings(BaseModel):
    """The endpoint (SYNDICATION_WEBHOOK__URL) and its signing secret (SYNDICATION_WEBHOOK__SECRET,
    ``whsec_`` and base64); the channel posts when both are set."""

    url: str | None = None
    secret: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value.strip()

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value()
        if not raw.startswith("whsec_"):
            raise ValueError("must start with whsec_ (Standard Webhooks: a base64 secret after the prefix)")
        try:
            key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("after whsec_ it must be base64") from None
        if len(key) < 16:
            raise ValueError("must hold at least 16 bytes (24 is the recommended minimum)")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)


def public_fields(article: Article) -> dict[str, Any]:
    """What a feed reader could see of ``article``: no e-mail addresses, no per-article social settings."""
    data = article.model_dump(mode="json", exclude={"content_html", "social"})
    data["authors"] = [{"name": a.name, "url": a.url} for a in article.authors]
    return data


def message_id(key: str) -> str:
    """The ``webhook-id`` of a delivery's message: derived from its key, so every retry carries it."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _retry_at(value: str | None, now: datetime) -> datetime:
    """Spec: RFC 9110 §10.2.3 Retry-After — delay-seconds or an HTTP-date."""
    value = (value or "").strip()
    at: datetime | None = None
    if value.isdigit():
        at = now + timedelta(seconds=int(value))
    elif value:
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            at = None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
    if at is None:
        return now + _RETRY_AFTER_FALLBACK
    return min(max(at, now), now + _RETRY_AFTER_CAP)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class WebhookChannel:
    """Sends each delivery as a signed message to one endpoint. Raises ``ConfigError``-free:
    ``WebhookSettings`` has already refused a bad URL or secret."""

    max_weighted_length = WEBHOOK_MAX_LENGTH

    def __init__(self, settings: WebhookSettings, *, name: str = "webhook",
                 clock: Callable[[], datetime] = _utcnow, session: requests.Session | None = None) -> None:
        assert settings.url and settings.secret, "WebhookSettings.enabled is checked by the registry"
        self.name = name
        self._url = settings.url
        self._signer = Webhook(settings.secret.get_secret_value())
        self._timeout = settings.timeout_s
        self._clock = clock
        self._session = session or requests.Session()

    # -- the Channel protocol ------------------------------------------------------------

    def post(self, text: str, *, url: str, context: PostContext | None = None,
             reply_to: str | None = None) -> PostResult:
        """Send ``article.published`` (or ``article.updated``) with the article and ``text``;
        ``reply_to`` (a correction's original) goes along as ``data.reply_to``."""
        context = context or PostContext(key=url, event="article.published", occurred_at=self._clock())
        msg_id = message_id(context.key)
        self._send(msg_id, context.event, context, text, reply_to=reply_to)
        return PostResult(msg_id, f"webhook://{self.name}/{msg_id}")

    def delete(self, remote_id: str, *, context: PostContext | None = None) -> None:
        """Send ``article.withdrawn`` for the message ``remote_id`` announced."""
        context = context or PostContext(key=remote_id, event="article.withdrawn", occurred_at=self._clock())
        self._send(message_id(f"{context.key}:{remote_id}"), "article.withdrawn", context, None,
                   replaces=remote_id)

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        """An endpoint cannot be asked what it received: None, so an unknown outcome is sent
        again with the same ``webhook-id``, which receivers use to drop the duplicate."""
        return None

    def add_list_member(self, handle: str) -> None:
        """Webhooks keep no staff list."""

    # -- internals -----------------------------------------------------------------------

    def _send(self, msg_id: str, event: str, context: PostContext, text: str | None, *,
              replaces: str | None = None, reply_to: str | None = None) -> None:
        data: dict[str, Any] = {"article": public_fields(context.article) if context.article else None, "text": text}
        if reply_to:
            data["reply_to"] = reply_to  # the webhook-id of the post a correction answers
        if replaces:
            data["webhook_id"] = replaces  # the message this withdrawal is about
        body = json.dumps({"type": event, "timestamp": context.occurred_at.isoformat(), "data": data},
                          ensure_ascii=False, separators=(",", ":"))
        now = self._clock()
        headers = {"content-type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": self._signer.sign(msg_id, now, body)}
        try:
            response = self._session.post(self._url, data=body.encode(), headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientChannelError(f"{self.name}: network failure sending {event}: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise TransientChannelError(f"{self.name}: cannot send {event}: {type(exc).__name__}") from exc
        self._judge(response, event, now)
        log.info("webhook sent", extra={"channel": self.name, "webhook_id": msg_id, "event": event})

    def _judge(self, response: requests.Response, event: str, now: datetime) -> None:
        """Map the endpoint's answer (never echoing headers or the URL, which may hold a token)."""
        status = response.status_code
        said = response.text[:200].strip() if response.text else ""
        what = f"{self.name}: {status} sending {event}" + (f": {said}" if said else "")
        if 200 <= status < 300:
            return
        if status == 429:
            retry_at = _retry_at(response.headers.get("retry-after"), now)
            raise RateLimited(f"{what}; retry at {retry_at.isoformat()}", retry_at=retry_at)
        if status == 410:
            raise PermanentChannelError(f"{self.name}: the endpoint is gone (410); fix the URL, then resume")
        if status in (401, 403):
            raise PermanentChannelError(f"{self.name}: the endpoint refused our signature or access ({status})")
        if status == 408 or status >= 500:
            raise TransientChannelError(what)
        if status in (400, 422):
            raise RejectedPost(what, explained=bool(said))
        raise RejectedPost(what, explained=False)  # 3xx (never followed), 404, 409...


# This kind, as the registry (``syndication.channels.registry.CHANNEL_KINDS``) loads it.
# The URL too: a Slack-style endpoint carries its token in the path.
KIND = ChannelKind(settings=WebhookSettings, rules=WEBHOOK_RULES, secrets=("url", "secret"),
                   build=lambda a: WebhookChannel(a.settings, name=a.name), configured=lambda s: s.enabled)
