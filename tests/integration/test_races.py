"""Concurrent first inserts: a CMS that retries or publishes in parallel must never get an error.

Several OS processes (the 'spawn' context, one engine each, as several API or worker
processes would have) wait at a barrier and then write at the same instant, through the
real publish path, on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, text

from syndication.feeds.catalog import feeds_for
from syndication.publishing import parse_batch, publish, unpublish
from syndication.store import Store
from syndication.store.articles import get_article, latest_for_feed
from syndication.store.deliveries import (
    add_list_member,
    deliveries_of,
    ensure_delivery,
    get_pause,
    is_list_member,
    pause_channel,
)
from syndication.store.feed_state import get_state, mark_dirty, record_render
from syndication.store.schema import ChannelStateRow, FeedStateRow, ListMemberRow, OutboxRow
from tests.conftest import FixedClock, article_json, make_site, store_for

WORKERS = 8
ROUNDS = 3
BARRIER_TIMEOUT = 120.0  # seconds: a stuck process fails the test instead of hanging it
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)

pytestmark = pytest.mark.integration


def _fresh_article(round_no: int, worker: int) -> dict[str, object]:
    """An article of its own, in a section, by an author, with a tag that are all new this round."""
    return article_json(f"{round_no}-{worker}", id=f"race-{round_no}-{worker}",
                        section=f"Race desk {round_no}", authors=[{"name": f"New Author {round_no}"}],
                        tags=[f"new-tag-{round_no}"], published_at="2026-11-30T08:00:00Z")


def _shared_article(round_no: int, worker: int) -> dict[str, object]:
    """The same new id from every process, each with different content."""
    return article_json(f"shared-{round_no}", id=f"shared-{round_no}", title=f"Version by worker {worker}",
                        section=f"Shared desk {round_no}", authors=[{"name": f"Shared Author {round_no}"}],
                        tags=[f"shared-tag-{round_no}"], published_at="2026-11-30T09:00:00Z")


DOOMED = article_json("doomed", id="doomed", published_at="2026-11-30T10:00:00Z")


def _writer(url: str, worker: int, barrier: Any, results: Any) -> None:
    """One process, as an API or worker process would be: it publishes, then writes ledger rows."""
    store = Store.from_url(url, migrate_schema=False)
    with store.read() as session:  # connected before the barrier: the race is on the writes
        session.execute(text("SELECT 1"))
    _publish_rounds(store, worker, barrier, results)
    _write_ledger(store, worker, barrier, results)
    store.dispose()


def _publish_rounds(store: Store, worker: int, barrier: Any, results: Any) -> None:
    """Each round, publish its own article, then the shared one, each at the barrier."""
    site = make_site()
    for round_no in range(ROUNDS):
        for phase, payload in (("fresh", _fresh_article(round_no, worker)),
                               ("shared", _shared_article(round_no, worker))):
            articles, refused = parse_batch([payload], site=site)
            assert refused == []
            barrier.wait(BARRIER_TIMEOUT)
            try:
                outcome = publish(store, site, articles, clock=FixedClock(NOW))
                accepted = outcome.accepted[0]
                results.put((phase, round_no, worker, "ok", (accepted.revision, accepted.status)))
            except Exception:  # noqa: BLE001 - reported to the test, which fails on it
                results.put((phase, round_no, worker, "error", traceback.format_exc(limit=3)))
    # Last, one article that every process withdraws at the same instant
    if worker == 0:
        publish(store, site, parse_batch([DOOMED], site=site)[0], clock=FixedClock(NOW))
    barrier.wait(BARRIER_TIMEOUT)
    try:
        accepted = unpublish(store, str(DOOMED["id"]), clock=FixedClock(NOW)).accepted[0]
        results.put(("withdraw", 0, worker, "ok", (accepted.revision, accepted.status)))
    except Exception:  # noqa: BLE001 - reported to the test, which fails on it
        results.put(("withdraw", 0, worker, "error", traceback.format_exc(limit=3)))


def _write_ledger(store: Store, worker: int, barrier: Any, results: Any) -> None:
    """Create the same delivery, pause, list member and feed states as every other process."""
    steps: list[tuple[str, Any]] = [
        ("delivery", lambda s: ensure_delivery(s, article_id="art-1", revision=1, channel="x", action="post",
                                               text=f"text {worker}", now=NOW)[1]),
        ("pause", lambda s: pause_channel(s, "x", until=NOW + timedelta(minutes=worker + 1),
                                          reason=f"rate limited {worker}", now=NOW)),
        ("member", lambda s: add_list_member(s, "x", "staff", "AdaReporter", now=NOW)),
        ("render", lambda s: record_render(s, "section/brand-new", seq=1, rendered_at=NOW, item_count=1,
                                           files={})),
        ("dirty", lambda s: mark_dirty(s, [("section/fresh", "Fresh")], now=NOW)),
    ]
    for name, step in steps:
        barrier.wait(BARRIER_TIMEOUT)
        try:
            with store.transaction() as session:
                outcome = step(session)
            results.put((name, 0, worker, "ok", outcome))
        except Exception:  # noqa: BLE001 - reported to the test, which fails on it
            results.put((name, 0, worker, "error", traceback.format_exc(limit=3)))


Report = tuple[str, int, int, str, Any]  # (phase, round, worker, "ok" or "error", result or traceback)
LEDGER_STEPS = 5
EXPECTED = WORKERS * (ROUNDS * 2 + 1 + LEDGER_STEPS)


def _race(store: Store) -> list[Report]:
    """Run ``_writer`` in WORKERS spawned processes against ``store``'s database; their reports."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    url = store.engine.url.render_as_string(hide_password=False)
    processes = [ctx.Process(target=_writer, args=(url, w, barrier, results)) for w in range(WORKERS)]
    for p in processes:
        p.start()
    reports: list[Report] = []
    try:
        for _ in range(EXPECTED):
            reports.append(results.get(timeout=BARRIER_TIMEOUT * 2))
    except queue.Empty:
        pass
    for p in processes:
        p.join(timeout=60)
        if p.is_alive():
            p.kill()
    assert len(reports) == EXPECTED, f"only {len(reports)} of {EXPECTED} writes reported back"
    return reports


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def raced(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[Report]]]:
    """A database (SQLite, then PostgreSQL) that WORKERS processes wrote to at the same instants."""
    store = store_for(request.param, tmp_path_factory.mktemp("races"))
    try:
        yield store, _race(store)
    finally:
        store.dispose()


def _failures(reports: list[Report], phases: tuple[str, ...]) -> str:
    mine = [r for r in reports if r[0] in phases]
    failed = [r for r in mine if r[3] == "error"]
    return f"{len(failed)} of {len(mine)} concurrent writes failed:\n" + "\n".join(
        f"{phase} round {r} worker {w}: {detail}" for phase, r, w, _, detail in failed[:5])


def test_concurrent_first_publishes_neither_fail_nor_duplicate_nor_lose_anything(
        raced: tuple[Store, list[Report]]) -> None:
    site = make_site()
    # Given an empty database and WORKERS processes, each with its own connection
    # When, ROUNDS times over, they all publish at the same instant an article of their own in
    # a section, by an author, with a tag that nobody has used yet; and then all publish the same
    # new article id, each with different content
    store, reports = raced

    # Then every publish succeeded
    phases = ("fresh", "shared", "withdraw")
    assert all(r[3] == "ok" for r in reports if r[0] in phases), _failures(reports, phases)
    with store.read() as session:
        states = Counter(session.scalars(select(FeedStateRow.feed_key)))
        assert all(n == 1 for n in states.values())
        for round_no in range(ROUNDS):
            # and every article of its own was stored once, at revision 1, and is in each of its
            # feeds exactly once; each feed has one state row that counted every change
            mine = parse_batch([_fresh_article(round_no, w) for w in range(WORKERS)], site=site)[0]
            for article in mine:
                stored = get_article(session, article.id)
                assert stored is not None and stored.revision == 1 and stored.article == article
            fresh = sorted((r[2], r[4]) for r in reports if r[:2] == ("fresh", round_no))
            assert fresh == [(w, (1, "created")) for w in range(WORKERS)]
            for spec in feeds_for(mine[0], site.feeds):
                if spec.key == "all":
                    continue
                members = [s.article.id for s in latest_for_feed(session, spec.key, 100)]
                assert sorted(members) == sorted(a.id for a in mine), spec.key
                state = get_state(session, spec.key)
                assert state is not None and state.dirty_seq == WORKERS and state.label == spec.label

            # and the shared id got one revision per distinct content, 1 to WORKERS, the first
            # one created and the others updates; the stored content is the last revision's
            shared = {r[2]: r[4] for r in reports if r[:2] == ("shared", round_no)}
            assert sorted(rev for rev, _ in shared.values()) == list(range(1, WORKERS + 1))
            assert sorted(status for _, status in shared.values()) == ["created"] + ["updated"] * (WORKERS - 1)
            last_writer = next(w for w, (rev, _) in shared.items() if rev == WORKERS)
            stored = get_article(session, f"shared-{round_no}")
            assert stored is not None and stored.revision == WORKERS
            assert stored.article.title == f"Version by worker {last_writer}"
            article = parse_batch([_shared_article(round_no, last_writer)], site=site)[0][0]
            for spec in feeds_for(article, site.feeds):
                members = [s.article.id for s in latest_for_feed(session, spec.key, 1000)]
                assert members.count(article.id) == 1, spec.key
                if spec.key != "all":
                    state = get_state(session, spec.key)
                    assert state is not None and state.dirty_seq == WORKERS
            # and one event per revision was written for the shared id, none twice
            revisions = session.scalars(select(OutboxRow.revision).where(OutboxRow.article_id == article.id))
            assert sorted(revisions) == list(range(1, WORKERS + 1))
        # and of the processes that withdrew the same article at once, one did it, as a new
        # revision with one event; the others found it already withdrawn
        withdrawals = sorted(r[4] for r in reports if r[0] == "withdraw")
        assert withdrawals == [(2, "unchanged")] * (WORKERS - 1) + [(2, "withdrawn")]
        doomed = get_article(session, "doomed")
        assert doomed is not None and (doomed.revision, doomed.status) == (2, "withdrawn")
        events = session.execute(select(OutboxRow.kind, OutboxRow.revision).where(OutboxRow.article_id == "doomed"))
        assert sorted(events) == [("article.published", 1), ("article.withdrawn", 2)]
        # and the front-page feed counted every change (the doomed article's publish and withdrawal too)
        everything = get_state(session, "all")
        assert everything is not None and everything.dirty_seq == WORKERS * ROUNDS * 2 + 2


def test_concurrent_ledger_writes_create_each_row_once(raced: tuple[Store, list[Report]]) -> None:
    # Given WORKERS processes that plan the same post, hit the same rate limit, add the same
    # staff handle, record a render of a feed nobody dirtied yet and dirty a new feed
    # When each of those happens in every process at the same instant
    store, reports = raced

    # Then none of them failed
    phases = ("delivery", "pause", "member", "render", "dirty")
    assert all(r[3] == "ok" for r in reports if r[0] in phases), _failures(reports, phases)
    with store.read() as session:
        # and exactly one process created the delivery; every process sees that one row
        created = [r[4] for r in reports if r[0] == "delivery"]
        assert sorted(created) == [False] * (WORKERS - 1) + [True]
        assert len(deliveries_of(session, "art-1")) == 1
        # and the channel has one pause row, which kept the longest pause asked for
        assert session.scalar(select(func.count()).select_from(ChannelStateRow)) == 1
        pause = get_pause(session, "x")
        assert pause is not None and pause.paused_until == NOW + timedelta(minutes=WORKERS)
        # and the handle is on the list once
        assert is_list_member(session, "x", "staff", "adareporter")
        assert session.scalar(select(func.count()).select_from(ListMemberRow)) == 1
        # and the feed states exist once each, counting every render and every change
        rendered = get_state(session, "section/brand-new")
        assert rendered is not None and rendered.renders == WORKERS and rendered.rendered_seq == 1
        fresh = get_state(session, "section/fresh")
        assert fresh is not None and fresh.dirty_seq == WORKERS and fresh.label == "Fresh"

