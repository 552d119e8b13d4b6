"""The Celery settings that make crashes safe are in force, with stable task names."""
from __future__ import annotations

import pytest

from config import Settings
from syndication.publishing import ARM_AHEAD
import workers.tasks  # noqa: F401 - registers the shared tasks
from workers.app import TASK_NAMES, create_app


@pytest.fixture
def celery_conf():
    return create_app(Settings(broker_url="redis://127.0.0.1:1/0", render_window_ms=50)).conf


def test_a_task_is_acknowledged_only_after_it_ran_and_requeued_if_its_worker_dies(celery_conf) -> None:
    assert celery_conf.task_acks_late is True
    assert celery_conf.task_reject_on_worker_lost is True


def test_a_worker_holds_at_most_one_message(celery_conf) -> None:
    assert celery_conf.worker_prefetch_multiplier == 1


def test_the_visibility_timeout_is_far_above_any_countdown_we_use(celery_conf) -> None:
    # Renders are delayed by at most the render window; retries of deliveries use no countdown.
    visibility = celery_conf.broker_transport_options["visibility_timeout"]
    assert visibility >= 600
    assert 50 / 1000 < visibility / 100
    # Scheduled releases are armed with an ETA only this close to their time (the database holds it)
    assert ARM_AHEAD.total_seconds() < visibility / 100


def test_feeds_and_social_have_their_own_queues_and_stable_task_names(celery_conf) -> None:
    routes = celery_conf.task_routes
    assert routes["syndication.render_feed"]["queue"] == "feeds"
    assert routes["syndication.deliver"]["queue"] == "social"
    assert routes["syndication.process_event"]["queue"] == "social"
    assert {q.name for q in celery_conf.task_queues} == {"urgent", "feeds", "social", "control"}
    # Each queue has its own exchange and key: a message routed to one queue lands only there.
    assert len({(q.exchange.name, q.routing_key) for q in celery_conf.task_queues}) == 4
    assert routes["syndication.process_events"]["queue"] == "social"
    assert set(TASK_NAMES.values()) == {"syndication.render_feed", "syndication.process_event", "syndication.process_events",
                                        "syndication.ping_hubs", "syndication.deliver", "syndication.sweep",
                                        "syndication.release"}
    # A release alarm rides the queue read first, never behind a backlog of posts
    assert routes["syndication.release"]["queue"] == "urgent"


def test_worker_events_are_on_for_flower(celery_conf) -> None:
    assert celery_conf.worker_send_task_events is True
    # ("task-sent" events are off: they double every publish; workers report received/started/succeeded)


def test_the_registered_tasks_carry_the_stable_names() -> None:
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"))
    app.loader.import_default_modules()
    assert set(TASK_NAMES.values()) <= set(app.tasks)
