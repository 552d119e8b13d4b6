"""The database schema. The database is the source of truth; Redis is transport.

Migrations live in ``syndication/store/migrations`` (Alembic); change both together.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite drops the offset; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Ids and feed keys sort byte by byte on every backend ("C" collation on PostgreSQL, as
# SQLite's BINARY), so ties in feed order, and so the feed files, are the same on both.
Key = String(200).with_variant(String(200, collation="C"), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ArticleRow(Base):
    """One article per CMS id, upserted; withdrawn ones stay as tombstones.

    ``status`` is ``published``, ``withdrawn`` or ``scheduled`` (a future ``published_at``: in
    no feed and never posted until it is released at that time).
    """

    __tablename__ = "articles"
    # Tombstones: the articles withdrawn lately are an index range, not a scan; scheduled
    # releases: the next due is one too.
    __table_args__ = (Index("ix_articles_status_modified", "status", "modified_at"),
                      Index("ix_articles_scheduled", "status", "published_at"))

    id: Mapped[str] = mapped_column(Key, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]
    revision: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="published")
    origin: Mapped[str] = mapped_column(String(16), default="api")
    received_at: Mapped[datetime]
    modified_at: Mapped[datetime]


class FeedItemRow(Base):
    """Membership of an article in a feed, so the latest N of a feed is an index scan."""

    __tablename__ = "feed_items"
    __table_args__ = (Index("ix_feed_items_latest", "feed_key", "published_at", "article_id"),)

    feed_key: Mapped[str] = mapped_column(Key, primary_key=True)
    article_id: Mapped[str] = mapped_column(Key, primary_key=True, index=True)
    published_at: Mapped[datetime]


class FeedStateRow(Base):
    """Per feed: how many changes it has seen and rendered, and what its files hold.

    ``dirty_seq`` grows with every change; a render records the ``dirty_seq`` it read
    *before* its snapshot as ``rendered_seq``. The feed is stale while they differ, so a
    change that commits during a render is never taken as rendered.
    """

    __tablename__ = "feed_state"

    feed_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    dirty_seq: Mapped[int] = mapped_column(Integer, default=0)
    rendered_seq: Mapped[int] = mapped_column(Integer, default=0)
    dirty_at: Mapped[datetime | None]
    rendered_at: Mapped[datetime | None]
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    renders: Mapped[int] = mapped_column(Integer, default=0)
    files: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # When the feed first appeared (None: before this was recorded), for the cap on new feeds per hour.
    created_at: Mapped[datetime | None] = mapped_column(index=True)


class OutboxRow(Base):
    """A change to announce, written in the same transaction as the change itself."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "processed_at", "created_at"),
                      Index("ix_outbox_redispatch", "processed_at", "next_dispatch_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    article_id: Mapped[str] = mapped_column(String(200), index=True)
    revision: Mapped[int]
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    next_dispatch_at: Mapped[datetime | None]  # if still unprocessed then, the message may be lost
    processed_at: Mapped[datetime | None]
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)


class DeliveryRow(Base):
    """The delivery ledger: one row per (article, revision, channel, action), ever."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("article_id", "revision", "channel", "action", name="uq_delivery"),
        Index("ix_deliveries_state", "state", "channel"),
        Index("ix_deliveries_posted", "channel", "posted_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[str] = mapped_column(String(200), index=True)
    revision: Mapped[int]
    channel: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    text: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    queued_at: Mapped[datetime | None]
    requeue_at: Mapped[datetime | None]  # if still pending then, the message may be lost
    queue_count: Mapped[int] = mapped_column(Integer, default=0)
    posted_at: Mapped[datetime | None]
    # A post's id on its service: X's digits, Mastodon's, or Bluesky's whole at:// URI (about 70).
    remote_id: Mapped[str | None] = mapped_column(String(512))
    remote_url: Mapped[str | None] = mapped_column(String(2048))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChannelStateRow(Base):
    """A channel's pause (rate limit or permanent error), seen by every worker."""

    __tablename__ = "channel_state"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    paused_until: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    # Unexplained refusals (RejectedPost.explained False) since the last success: the breaker.
    refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ListMemberRow(Base):
    """A handle already added to a channel's staff list."""

    __tablename__ = "list_members"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    list_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[datetime]


class TimelineRow(Base):
    """One step in an article's story: received, stored, rendered, pinged, posted..."""

    __tablename__ = "timeline"
    __table_args__ = (Index("ix_timeline_article", "article_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OpsActionRow(Base):
    """An operator's action (retry, discard, pause, resume), recorded."""

    __tablename__ = "ops_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OpsSessionRow(Base):
    """An operator's login session, shared by every API process.

    Only the SHA-256 of the session id is kept, so a copy of this table opens no session.
    """

    __tablename__ = "ops_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    csrf: Mapped[str] = mapped_column(String(64))
    flash: Mapped[list[Any]] = mapped_column(JSON, default=list)  # messages shown once, on the next page
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginFailureRow(Base):
    """Failed ops logins of one client in its current window (the login throttle)."""

    __tablename__ = "login_failures"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started: Mapped[datetime]


class SecretKeyRow(Base):
    """A key generated once, at first start, and shared by every process and restart."""

    __tablename__ = "secret_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class HubPingRow(Base):
    """A WebSub publish notification owed to one hub for one feed URL (the ping outbox).

    ``pending_key`` is set while the ping is owed and cleared when it is final, and is
    unique: every render that changes a feed before the ping goes out joins the same row.
    ``version`` grows with each such join, so an attempt that started before one does not
    close the row.
    """

    __tablename__ = "hub_pings"
    __table_args__ = (Index("ix_hub_pings_due", "state", "next_attempt_at"),
                      Index("ix_hub_pings_hub", "hub", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hub: Mapped[str] = mapped_column(String(2048))
    feed_url: Mapped[str] = mapped_column(String(2048))
    pending_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    article_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    version: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class ArchiveItemRow(Base):
    """An article's place in a feed's archives (RFC 5005), kept after it leaves the feed.

    ``position`` counts from 0 in the order the renders filed the feed's articles; the page
    is ``position // page size``, so a full page never gains or loses a place. ``pending``
    is a token set by every change to the article and cleared by the render that rewrote
    its page (only if unchanged since: a change during that render keeps it pending).
    """

    __tablename__ = "archive_items"
    __table_args__ = (UniqueConstraint("feed_key", "position", name="uq_archive_position"),
                      Index("ix_archive_items_pending", "feed_key", "pending"))

    feed_key: Mapped[str] = mapped_column(Key, primary_key=True)
    article_id: Mapped[str] = mapped_column(Key, primary_key=True)
    position: Mapped[int | None] = mapped_column(Integer)
    pending: Mapped[str | None] = mapped_column(String(36))
class WebhookSignatureRow(Base):
    """A signed webhook request already accepted: its MAC, kept until its replay window ends."""

    __tablename__ = "webhook_signatures"

    mac: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
