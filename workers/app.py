"""The Celery app. Every setting here is chosen for safety; each says why.

Start workers: ``celery -A workers.app worker -Q urgent,feeds`` and
``celery -A workers.app worker -Q control,social --pool threads``.
"""
from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from config import Settings
from workers.broker import QUEUES

TASK_NAMES = {
    "render_feed": "syndication.render_feed",
    "process_event": "syndication.process_event",
    "process_events": "syndication.process_events",
    "ping_hubs": "syndication.ping_hubs",
    "deliver": "syndication.deliver",
    "sweep": "syndication.sweep",
    "release": "syndication.release",
}


def broker_url_for(settings: Settings) -> str:
    if not settings.broker_url:
        raise RuntimeError("no broker: set SYNDICATION_BROKER_URL or start with `syndication run`")
    return settings.broker_url


def create_app(settings: Settings) -> Celery:
    """Build the Celery app from settings (read once, by the caller)."""
    app = Celery("syndication", broker=broker_url_for(settings), include=["workers.tasks"])
    app.conf.update(
        # Ack after the task ran, and re-queue if the worker process dies mid-task: a crash
        # must never lose a render or a post. Duplicates are harmless: renders are idempotent
        # and posts go through the delivery ledger.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # No prefetch: a killed worker holds at most the one message it was running.
        worker_prefetch_multiplier=1,
        # Unacked messages come back after the visibility timeout; it must exceed the longest
        # task (renders take milliseconds, a post at most a minute) or a slow task runs twice.
        # Our countdowns are bounded by the render window, far below it.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s,
                                  # Queues are read in the order a worker lists them (-Q), not round robin.
                                  "queue_order_strategy": "priority"},
        # Nothing reads results; state lives in the database.
        task_ignore_result=True,
        # Plain JSON: tasks take ids, never pickled objects.
        task_serializer="json",
        accept_content=["json"],
        # Slow social APIs never delay feeds: separate queues, separate worker processes.
        # `urgent` carries renders of the site-wide feed, which most readers poll: listed first and
        # read in that order (queue_order_strategy below), it never waits behind a backlog of
        # section, author and tag renders.
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        task_default_queue="feeds",
        task_routes={
            TASK_NAMES["render_feed"]: {"queue": "feeds"},
            TASK_NAMES["sweep"]: {"queue": "control"},
            # Releases of scheduled articles ride the renders' queue: read first, never behind posts.
            TASK_NAMES["release"]: {"queue": "urgent"},
            TASK_NAMES["process_event"]: {"queue": "social"},
            TASK_NAMES["process_events"]: {"queue": "social"},
            TASK_NAMES["deliver"]: {"queue": "social"},
            TASK_NAMES["ping_hubs"]: {"queue": "social"},
        },
        # Worker and task events on, so Flower and `syndication status` can see workers and
        # tasks. No "task-sent" events: they would double every publish of a burst.
        worker_send_task_events=True,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        # Publishing from the API must not hang when Redis is down: fail fast, the outbox sweeper
        # dispatches later.
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                                   "interval_max": 0.5},
        broker_connection_timeout=2,
        beat_schedule={
            "sweep": {"task": TASK_NAMES["sweep"], "schedule": settings.sweep_interval_s,
                      "options": {"expires": max(settings.sweep_interval_s * 2, 5)}},
        },
        worker_hijack_root_logger=False,
    )
    return app


def __getattr__(name: str) -> Celery:
    # `celery -A workers.app` asks for `app`; it is built on first use so that importing
    # this module (e.g. from the CLI before the embedded broker starts) reads no settings.
    if name == "app":
        global app
        app = create_app(Settings())
        return app
    raise AttributeError(name)
