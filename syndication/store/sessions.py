"""Operator sessions, the failed-login throttle and shared keys: what every API process must see.

Several API processes (``syndication run --api-workers N``, or several hosts) share nothing but
the database, so a login made on one is valid on all, and survives a restart. A session id is
random and stored only as its SHA-256: a copy of the table opens no session. "Now" is always
passed in (the web layer's injected clock), never read here.

>>> with store.transaction() as db:
...     sid, session = create_session(db, "ops:1a2b3c", now=now, ttl=timedelta(hours=12))
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from syndication.store.conflicts import insert_for
from syndication.store.schema import LoginFailureRow, OpsSessionRow, SecretKeyRow


@dataclass(frozen=True)
class OpsSession:
    """A live session: who it acts as, its CSRF token, when it ends, messages waiting to be shown."""

    actor: str
    csrf: str
    expires_at: datetime
    flash: tuple[str, ...] = ()


def hash_session_id(sid: str) -> str:
    """What the table keeps instead of the session id."""
    return hashlib.sha256(sid.encode()).hexdigest()


# -- sessions ----------------------------------------------------------------------------------

def create_session(db: Session, actor: str, *, now: datetime, ttl: timedelta) -> tuple[str, OpsSession]:
    """Start a session for ``actor`` that ends at ``now + ttl``; returns (session id, session).

    The id goes to the client and nowhere else; sessions already over are purged here.
    """
    db.execute(delete(OpsSessionRow).where(OpsSessionRow.expires_at <= now))
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    db.add(OpsSessionRow(id_hash=hash_session_id(sid), actor=actor, csrf=csrf, flash=[], created_at=now,
                         expires_at=now + ttl))
    return sid, OpsSession(actor, csrf, now + ttl)


def get_session(db: Session, sid: str, *, now: datetime) -> OpsSession | None:
    """The session with this id, or None if there is none or it has ended."""
    row = db.get(OpsSessionRow, hash_session_id(sid))
    if row is None or row.expires_at <= now:
        return None
    return OpsSession(row.actor, row.csrf, row.expires_at, tuple(row.flash or ()))


def touch_session(db: Session, sid: str, *, now: datetime, idle: timedelta, ttl: timedelta) -> OpsSession | None:
    """The live session with this id, its end moved to ``now + idle`` (never past its start +
    ``ttl``); None if there is none or it has ended, idle or not."""
    row = db.scalars(select(OpsSessionRow).where(OpsSessionRow.id_hash == hash_session_id(sid))
                     .with_for_update()).first()
    if row is None or row.expires_at <= now:
        return None
    row.expires_at = min(now + idle, row.created_at + ttl)
    return OpsSession(row.actor, row.csrf, row.expires_at, tuple(row.flash or ()))


def drop_session(db: Session, sid: str) -> None:
    """End a session (log-out); unknown ids are ignored."""
    db.execute(delete(OpsSessionRow).where(OpsSessionRow.id_hash == hash_session_id(sid)))


def add_flash(db: Session, sid: str, message: str) -> None:
    """Keep ``message`` for the session's next page, whichever process serves it."""
    row = db.scalars(select(OpsSessionRow).where(OpsSessionRow.id_hash == hash_session_id(sid))
                     .with_for_update()).first()
    if row is not None:
        row.flash = [*(row.flash or []), message][-20:]


def take_flash(db: Session, sid: str) -> list[str]:
    """The session's waiting messages, removed: each is shown once."""
    row = db.scalars(select(OpsSessionRow).where(OpsSessionRow.id_hash == hash_session_id(sid))
                     .with_for_update()).first()
    if row is None or not row.flash:
        return []
    messages, row.flash = list(row.flash), []
    return messages


# -- the failed-login throttle -----------------------------------------------------------------

def _client(client: str) -> str:
    return client[:64]


def login_retry_after(db: Session, client: str, *, now: datetime, limit: int,
                      window: timedelta) -> timedelta | None:
    """How long ``client`` must wait before it may try a login again; None: it may try now.

    A client that failed ``limit`` times in a window waits until that window ends.
    """
    row = db.get(LoginFailureRow, _client(client))
    if row is None or row.failures < limit or row.window_started + window <= now:
        return None
    return row.window_started + window - now


def record_login_failure(db: Session, client: str, *, now: datetime, window: timedelta) -> None:
    """Count one failed login of ``client``; a window starts at a client's first failure.

    One statement per step, so concurrent failures from several processes are all counted.
    """
    db.execute(delete(LoginFailureRow).where(LoginFailureRow.window_started <= now - window))
    insert = insert_for(db, LoginFailureRow).values(client=_client(client), failures=1, window_started=now)
    db.execute(insert.on_conflict_do_update(index_elements=[LoginFailureRow.client],
                                            set_={"failures": LoginFailureRow.failures + 1}))


def clear_login_failures(db: Session, client: str) -> None:
    """Forget ``client``'s failures (after a successful login)."""
    db.execute(delete(LoginFailureRow).where(LoginFailureRow.client == _client(client)))


# -- keys shared by every process --------------------------------------------------------------

def shared_key(db: Session, name: str, *, now: datetime, size: int = 32) -> bytes:
    """The random key called ``name``: made by whichever process asks first, then the same for all.

    Inserting first (and ignoring a conflict) makes two processes starting together agree.
    """
    db.execute(insert_for(db, SecretKeyRow).values(name=name, value=secrets.token_hex(size), created_at=now)
               .on_conflict_do_nothing(index_elements=[SecretKeyRow.name]))
    return bytes.fromhex(db.scalars(select(SecretKeyRow.value).where(SecretKeyRow.name == name)).one())
