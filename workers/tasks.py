"""Thin tasks: take ids, load what they need, call one domain function.

Names are explicit and stable (``syndication.render_feed``), so queued messages survive refactors.
"""
from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from celery import current_app, shared_task
from celery.signals import worker_ready

from syndication import metrics
from syndication.publishing import utcnow
from syndication.releasing import arm_next, release_and_arm
from syndication.rendering import damaged_feeds
from syndication.rendering import render_feed as render_feed_files
from syndication.delivering import release_dead_claims, run_delivery
from syndication.social import plan_event, plan_events
from syndication.sweeping import forget_dispatches, queue_deliveries
from syndication.sweeping import sweep as sweep_outbox
from syndication.websub import backoff_from, deliver_pings, pings_due
from workers import resources, telemetry  # noqa: F401 - telemetry connects the signal hooks
from workers.app import TASK_NAMES
from workers.dispatch import CeleryDispatcher
from workers.processes import pid_alive

log = logging.getLogger(__name__)
HOST = socket.gethostname()


@worker_ready.connect
def _forget_pending(**_: object) -> None:
    # A worker that starts may follow one that was killed holding a render: its message
    # waits out the visibility timeout, so drop the flags and let the sweeper re-send now.
    res = resources.get()
    try:
        res.broker.clear_pending()
    except Exception as exc:  # noqa: BLE001 - broker not reachable yet; the flags expire anyway
        log.warning("could not clear render flags", extra={"error": repr(exc)})
    # Feed files are written without fsync: after a machine crash some may not hold what their
    # last render wrote. Those feeds become stale here, and the sweeper dispatches their renders.
    damaged_feeds(res.store, res.feeds_dir, clock=utcnow)
    # Scheduled articles that fell due while the stack was down are released now, not at the next sweep.
    try:
        release_and_arm(res.store, res.site, _dispatcher(), clock=utcnow)
    except Exception as exc:  # noqa: BLE001 - the database may be starting too; the sweeper releases them
        log.warning("could not release overdue articles at start", extra={"error": repr(exc)})


def _dispatcher() -> CeleryDispatcher:
    res = resources.get()
    return CeleryDispatcher(current_app, res.broker, window_ms=res.settings.render_window_ms,
                            redispatch_after=timedelta(seconds=res.settings.redispatch_after_s))


@shared_task(name=TASK_NAMES["render_feed"])
def render_feed(feed_key: str) -> None:
    """Render one feed in every format; coalesces with the throttle in ``workers.broker``."""
    res = resources.get()
    res.broker.start_render(feed_key)
    with res.broker.lock(feed_key):
        mark = metrics.timeline_mark(res.store)
        result = render_feed_files(res.store, res.site, res.feeds_dir, feed_key, clock=utcnow)
        metrics.observe_render(res.store, feed_key, after=mark)
    if result.pings:
        # The pings are rows already (the render's transaction wrote them): if this message
        # is lost, or cannot be sent, the sweeper finds them due and asks again.
        try:
            ping_hubs.delay()
        except Exception as exc:  # noqa: BLE001 - any broker failure leaves the pings to the sweeper
            log.warning("could not queue hub pings; the sweeper will", extra={"error": repr(exc)})


@shared_task(name=TASK_NAMES["ping_hubs"], ignore_result=True)
def ping_hubs(*_: object) -> None:
    """Send the WebSub pings that are due, from the hub ping outbox (arguments of older
    messages, the feed URLs, are ignored: the rows say what is owed)."""
    res = resources.get()
    deliver_pings(res.store, clock=utcnow, backoff=backoff_from(res.settings))


@shared_task(name=TASK_NAMES["process_event"])
def process_event(event_id: str) -> None:
    """Plan an outbox event's deliveries in the ledger and queue them; a repeat plans nothing new."""
    res = resources.get()
    ids = plan_event(res.store, res.site, res.channels, event_id, clock=utcnow)
    if ids:
        queue_deliveries(res.store, _dispatcher(), ids, clock=utcnow)


@shared_task(name=TASK_NAMES["process_events"])
def process_events(event_ids: list[str]) -> None:
    """``process_event`` for a batch of events (what a batch publish sends); each is idempotent."""
    res = resources.get()
    ids = plan_events(res.store, res.site, res.channels, event_ids, clock=utcnow)
    if ids:
        queue_deliveries(res.store, _dispatcher(), ids, clock=utcnow)


@shared_task(name=TASK_NAMES["deliver"])
def deliver(delivery_id: int) -> None:
    """One attempt at one ledger row; retries are queued by the sweeper when they fall due."""
    res = resources.get()
    run_delivery(res.store, res.site, res.channels, delivery_id, clock=utcnow, owner=f"{HOST}:{os.getpid()}",
                 backoff_base_s=res.settings.delivery_backoff_base_s,
                 backoff_cap_s=res.settings.delivery_backoff_cap_s)


@shared_task(name=TASK_NAMES["release"], ignore_result=True)
def release(at: str) -> None:
    """The alarm of a scheduled release: release what is due and arm the next one."""
    res = resources.get()
    due = datetime.fromisoformat(at)
    if utcnow() < due:  # the timer rang a little early: ring again at the time itself
        _dispatcher().schedule_release(due)
        return
    outcome = release_and_arm(res.store, res.site, _dispatcher(), clock=utcnow, arm=False)
    if outcome.accepted:  # only the alarm that released something arms the next: alarms never multiply
        arm_next(res.store, _dispatcher(), clock=utcnow)


@shared_task(name=TASK_NAMES["sweep"])
def sweep() -> None:
    """Dispatch what was committed but never handed over (Redis down, process killed)."""
    res = resources.get()
    if res.broker.server_restarted():
        res.broker.clear_pending()  # flags may name messages the restart lost
        forget_dispatches(res.store, clock=utcnow)
    release_dead_claims(res.store, host=HOST, alive=pid_alive, clock=utcnow)
    release_and_arm(res.store, res.site, _dispatcher(), clock=utcnow)
    sweep_outbox(res.store, _dispatcher(), grace=timedelta(seconds=res.settings.sweep_grace_s))
    if pings_due(res.store, now=utcnow()):
        ping_hubs.delay()  # a retry whose back-off ended, or a ping whose message was lost
