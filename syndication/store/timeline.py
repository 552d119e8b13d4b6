"""Each article's story, one row per step, and the operators' action log."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from syndication.store.schema import OpsActionRow, TimelineRow


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str
    detail: dict[str, Any]


def add_step(session: Session, article_id: str, kind: str, *, now: datetime, **detail: Any) -> None:
    session.add(TimelineRow(article_id=article_id, at=now, kind=kind, detail=detail))


def add_steps(session: Session, rows: list[tuple[str, str, dict[str, Any]]], *, now: datetime) -> None:
    """Many steps in one statement."""
    if rows:
        session.execute(insert(TimelineRow), [{"article_id": a, "at": now, "kind": k, "detail": d} for a, k, d in rows])


def steps_of(session: Session, article_id: str, limit: int = 500) -> list[Step]:
    """An article's first ``limit`` steps, in time order (steps are written by several processes,
    so their ids are not: a render's step can commit after a later planning's)."""
    rows = session.scalars(select(TimelineRow).where(TimelineRow.article_id == article_id)
                           .order_by(TimelineRow.at, TimelineRow.id).limit(limit))
    return [Step(r.at, r.kind, dict(r.detail or {})) for r in rows]


def record_action(session: Session, actor: str, action: str, target: str, *, now: datetime,
                  **detail: Any) -> None:
    session.add(OpsActionRow(at=now, actor=actor, action=action, target=target, detail=detail))


def last_step_id(session: Session) -> int:
    """The newest timeline row id (0 when there is none): a mark to read later steps from."""
    return int(session.scalar(select(func.max(TimelineRow.id))) or 0)


def steps_after(session: Session, mark: int, kind: str) -> list[tuple[str, datetime, dict[str, Any]]]:
    """(article id, time, detail) of the steps of ``kind`` written after ``mark``."""
    return [(a, at, dict(d or {})) for a, at, d in session.execute(
        select(TimelineRow.article_id, TimelineRow.at, TimelineRow.detail)
        .where(TimelineRow.id > mark, TimelineRow.kind == kind))]


def steps_of_articles(session: Session, article_ids: set[str], kind: str) -> list[tuple[str, datetime, dict[str, Any]]]:
    """(article id, time, detail) of these articles' steps of ``kind``, oldest first."""
    return [(a, at, dict(d or {})) for a, at, d in session.execute(
        select(TimelineRow.article_id, TimelineRow.at, TimelineRow.detail)
        .where(TimelineRow.article_id.in_(article_ids), TimelineRow.kind == kind).order_by(TimelineRow.id))]
