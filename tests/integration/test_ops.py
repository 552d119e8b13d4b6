"""Operators on a real running stack: `syndication status` as a health check, /metrics with what the
workers observed, /ops behind its token, and a cross-site post that changes nothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from syndication.publishing import utcnow
from syndication.store.deliveries import claim, discard, ensure_delivery, get_delivery, mark_failed
from syndication.store.schema import OpsActionRow
from tests.conftest import article_json
from tests.integration.conftest import running
from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.integration
OPS_TOKEN = "ops-integration-token-42-abcdefghij"


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Stack]:
    with running(tmp_path_factory.mktemp("ops"), backend, extra_env={"ops_tokens": OPS_TOKEN}) as stack:
        yield stack


@pytest.fixture
def ops_stack(shared_stack: Stack) -> Stack:
    """The module's stack with nothing in motion: each test starts from a settled pipeline,
    whichever tests ran before it (each leaves no failed delivery behind)."""
    shared_stack.wait_settled()
    return shared_stack


def publish(stack: Stack, *ids: str) -> None:
    with stack.client() as http:
        r = http.post("/api/v1/articles", json=[article_json(i) for i in ids], headers=stack.auth())
    assert r.status_code == 202, r.text


def syndication(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from apps.cli import main; main()", *args],
                          env=env or stack.env(), capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])


def test_status_json_reports_every_part_and_exits_0_when_all_is_well(ops_stack: Stack) -> None:
    # Given a few publishes, processed and rendered
    publish(ops_stack, "s1", "s2", "s3")
    ops_stack.wait_settled(30)
    # When an operator runs `syndication status --json` with the stack's environment
    result = syndication(ops_stack, "status", "--json")
    # Then it exits 0, with queues, workers, outbox, channels, feeds, failures and hubs
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"queues", "workers", "outbox", "channels", "feeds", "failures", "hubs", "scheduled"}
    assert set(data["queues"]) == {"urgent", "feeds", "social", "control"}
    assert len(data["workers"]) >= 2
    assert data["outbox"]["pending"] == 0
    assert [c["name"] for c in data["channels"]] == ["preview"] and data["channels"][0]["state"] == "active"
    [everything] = [f for f in data["feeds"] if f["feed"] == "all"]
    assert everything["items"] >= 3 and everything["rendered_at"] and not everything["stale"]
    assert data["failures"]["count"] == 0


def test_status_finds_the_embedded_broker_or_says_it_is_unreachable(ops_stack: Stack, tmp_path: Path) -> None:
    # Given no SYNDICATION_BROKER_URL, the socket `syndication run` puts under the data folder is used
    env = {k: v for k, v in ops_stack.env().items() if k != "SYNDICATION_BROKER_URL"}
    found = syndication(ops_stack, "status", "--json", env=env)
    assert json.loads(found.stdout)["queues"] is not None, found.stderr
    # And with no broker at all, the status says so and exits 1, as a health check must
    env["SYNDICATION_DATA_DIR"] = str(tmp_path / "empty")
    env["SYNDICATION_DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    alone = syndication(ops_stack, "status", env=env)
    assert alone.returncode == 1
    assert "broker unreachable" in alone.stdout


def test_metrics_expose_what_the_workers_observed(ops_stack: Stack) -> None:
    # Given an article published and rendered by the workers
    publish(ops_stack, "m1")
    ops_stack.wait_settled(30)

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with ops_stack.client() as http:
            response = http.get("/metrics")  # Prometheus scrapes without a token
        assert response.status_code == 200
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(response.text) for s in f.samples}

    # Then /metrics has the publish→feed latency and the render task's duration from the workers
    found = wait_for(lambda: (lambda s: s if s.get(("syndication_publish_to_feed_seconds_count",
                                                    (("feed_kind", "all"),)), 0) >= 1 else None)(samples()),
                     20, interval=0.5, what="the latency histogram")
    durations = [v for (name, labels), v in found.items() if name == "syndication_task_duration_seconds_count"
                 and ("task", "syndication.render_feed") in labels]
    assert sum(durations) >= 1
    # And the store's numbers, every series named syndication_*
    assert found[("syndication_feed_renders_total", (("feed", "all"),))] >= 1
    assert ("syndication_queue_depth", (("queue", "feeds"),)) in found
    assert found[("syndication_broker_up", ())] == 1
    assert all(name.startswith("syndication_") for name, _ in found)


def test_readyz_checks_the_database_and_the_broker(ops_stack: Stack) -> None:
    with ops_stack.client() as http:
        ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_ops_is_refused_without_the_token_and_served_with_it(ops_stack: Stack) -> None:
    with ops_stack.client() as http:
        assert http.get("/ops").status_code == 401
        assert http.get("/ops/status.json").status_code == 401
        assert http.get("/ops", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        page = http.get("/ops", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert page.status_code == 200
    assert "Pipeline status" in page.text and "feeds" in page.text


@pytest.fixture
def failed_delivery(ops_stack: Stack) -> Iterator[int]:
    """A correction post of a published article that failed (the preview channel never fails by
    itself). Discarded afterwards if still failed, so that no later test sees a failure."""
    stack = ops_stack
    publish(stack, "csrf")
    stack.wait_settled(30)
    now = utcnow()
    with stack.runtime.store.transaction() as session:
        d, _ = ensure_delivery(session, article_id="art-csrf", revision=1, channel="preview", action="correct",
                               text="Correction: art-csrf", now=now)
        assert claim(session, d.id, now=now, lease=timedelta(seconds=30))
        mark_failed(session, d.id, error="HTTP 503 Service Unavailable", now=now)
    yield d.id
    with stack.runtime.store.transaction() as session:
        discard(session, d.id, now=utcnow())  # a no-op unless it is still failed


def ops_actions(stack: Stack, delivery_id: int) -> list[OpsActionRow]:
    with stack.runtime.store.read() as session:
        return list(session.scalars(select(OpsActionRow).where(OpsActionRow.target == f"delivery:{delivery_id}")))


def delivery_state(stack: Stack, delivery_id: int) -> str:
    with stack.runtime.store.read() as session:
        found = get_delivery(session, delivery_id)
    assert found is not None
    return found.state


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(ops_stack: Stack, failed_delivery: int) -> None:
    # Given a failed delivery, and an operator logged in through the form
    delivery_id = failed_delivery
    with httpx.Client(base_url=ops_stack.base, timeout=30, follow_redirects=True) as browser:
        login = browser.post("/ops/login", data={"token": OPS_TOKEN})
        assert login.status_code == 200 and "Pipeline status" in login.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        # When a form posts Retry without the CSRF token (what a cross-site page could send)
        forged = browser.post(f"/ops/deliveries/{delivery_id}/retry", data={"next": "/ops"})
        cross_site = browser.post(f"/ops/deliveries/{delivery_id}/retry", data={"csrf": csrf},
                                  headers={"Origin": "https://attacker.example"})
        # Then both are refused, and nothing changed or was recorded
        assert forged.status_code == 403 and cross_site.status_code == 403
        assert delivery_state(ops_stack, delivery_id) == "failed"
        assert ops_actions(ops_stack, delivery_id) == []
        # And with the token, the retry is made, and the sweeper gets it posted
        done = browser.post(f"/ops/deliveries/{delivery_id}/retry", data={"csrf": csrf, "next": "/ops"},
                            headers={"Origin": ops_stack.base})
        assert done.status_code == 200 and f"delivery {delivery_id}" in done.text
    wait_for(lambda: delivery_state(ops_stack, delivery_id) == "posted", 30, what="the retried post")
    [action] = ops_actions(ops_stack, delivery_id)
    assert action.action == "retry" and action.actor.startswith("ops:") and OPS_TOKEN not in action.actor

