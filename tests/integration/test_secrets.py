"""Secrets stay secret: after publishing and posting to X, no token, key or webhook secret is in a
log file, in what `syndication status` prints, or on the ops page."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from apps.web.auth import SIGNATURE_HEADER, sign
from tests.conftest import article_json
from tests.support.stack import TOKEN, Stack, wait_for
from tests.support.x_standin import XStandIn
from workers.app import TASK_NAMES
from workers.app import create_app as create_celery

pytestmark = pytest.mark.integration

CONSUMER_KEY, CONSUMER_SECRET = "ck-Kx8s2LmQ9vT4", "cs-Zr7pW3nB6yH1qJ5"
ACCESS_TOKEN, ACCESS_SECRET = "at-1500-Nf4dS8kL2pX6", "ats-Qm3vC9bT7wR2eY5"
OPS_TOKEN, WEBHOOK_SECRET = "ops-Hj6tF2xV8cN4-Rw7qZ3mB5yK1uE9oA2s", "whsec-Lp5gD1sA9kM3"
URL_PASSWORD = "Pw-Vq7tR2zK"
SECRETS = {"api token": TOKEN, "ops token": OPS_TOKEN, "webhook secret": WEBHOOK_SECRET, "URL password": URL_PASSWORD,
           "X consumer key": CONSUMER_KEY, "X consumer secret": CONSUMER_SECRET,
           "X access token": ACCESS_TOKEN, "X access token secret": ACCESS_SECRET}

SITE = """
[site]
title = "Secret Gazette"
base_url = "https://news.test.example/"
timezone = "UTC"

[feeds]
sections = "*"
authors = "*"

[channels.x]
template = "{{ title }} {{ url }}"
"""


def verbose_stack(root: Path, **options: object) -> Stack:
    """The stack with its workers logging at DEBUG, where libraries are most talkative."""
    return Stack(root, feed_workers=1, social_workers=2, loglevel="DEBUG", **options)  # type: ignore[arg-type]


@pytest.fixture
def x() -> Iterator[XStandIn]:
    with XStandIn(secrets=(CONSUMER_SECRET, ACCESS_SECRET)) as standin:
        yield standin


@pytest.fixture
def stack(tmp_path: Path, x: XStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # X credentials in the environment, as in production: every process, the web service too, holds them.
    for name, value in {"CONSUMER_KEY": CONSUMER_KEY, "CONSUMER_SECRET": CONSUMER_SECRET, "ACCESS_TOKEN": ACCESS_TOKEN,
                        "ACCESS_TOKEN_SECRET": ACCESS_SECRET, "API_BASE_URL": x.url}.items():
        monkeypatch.setenv(f"SYNDICATION_X__{name}", value)
    running = verbose_stack(tmp_path / "stack", extra_env={"ops_tokens": OPS_TOKEN, "webhook_secret": WEBHOOK_SECRET},
                           site_toml=SITE).start()
    yield running
    running.stop()


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


def test_no_secret_reaches_a_log_the_status_or_the_ops_page(stack: Stack, x: XStandIn) -> None:
    now = datetime.now(timezone.utc).isoformat()
    # Given one article published with the API token and one through the signed webhook
    with stack.client() as http:
        assert http.post("/api/v1/articles", json=article_json("token", published_at=now),
                         headers=stack.auth()).status_code == 202
        body = json.dumps(article_json("hook", published_at=now)).encode()
        signed = {SIGNATURE_HEADER: sign(WEBHOOK_SECRET, int(time.time()), body), "Content-Type": "application/json"}
        assert http.post("/api/v1/webhook", content=body, headers=signed).status_code == 202
    # And both posted to X with the OAuth credentials
    wait_for(lambda: len(x.live_tweets) == 2, 60, what="two posts on X")
    # And a task that fails in a worker with a secret and a URL password in its traceback
    crafted = f"tag/{CONSUMER_SECRET} postgresql://syndication:{URL_PASSWORD}@db.internal/syndication"
    create_celery(stack.settings).send_task(TASK_NAMES["render_feed"], args=[crafted])
    feeds_log = stack.root / "var" / "logs" / "feeds-worker.log"
    wait_for(lambda: "is not a feed key" in feeds_log.read_text(errors="replace"), 60, what="the task's traceback")
    assert all(r.oauth_signed for r in x.requests if r.path == "/2/tweets")
    # When an operator looks: `syndication status`, its JSON, the ops page and an article's timeline
    cli = [subprocess.run([sys.executable, "-c", "from apps.cli import main; main()", "status", *flag],
                          env=stack.env(), capture_output=True, text=True, timeout=60) for flag in ([], ["--json"])]
    with stack.client() as http:
        bearer = {"Authorization": f"Bearer {OPS_TOKEN}"}
        pages = [http.get(p, headers=bearer).text for p in ("/ops", "/ops/status.json", "/ops/articles/art-token")]
        pages.append(http.post("/ops/login", data={"token": OPS_TOKEN[:-1]}).text)  # a near miss is not echoed
        pages.append(http.get("/metrics").text)
    # Then the output is real...
    assert "art-token" in pages[2] and "delivery.posted" in pages[2]
    assert 'data-channel="x"' in pages[0]
    assert json.loads(cli[1].stdout)["channels"][0]["name"] == "x"
    # ...and holds no secret, in stdout or stderr
    for result in cli:
        assert leaks(result.stdout + result.stderr) == [], result.args
    for page in pages:
        assert leaks(page) == []
    # And the DEBUG-level logs of every process, which carry ids, hold none either
    logs = {p.name: p.read_text(errors="replace") for p in (stack.root / "var" / "logs").glob("*.log")}
    assert {"feeds-worker.log", "social-worker.log", "beat.log"} <= set(logs)
    assert "delivery done" in logs["social-worker.log"] and "delivery_id=" in logs["social-worker.log"]
    assert "feed rendered" in logs["feeds-worker.log"] and "feed=all" in logs["feeds-worker.log"]
    # (the failed task's traceback is there, redacted: the secret and the URL password are ***)
    assert "Traceback (most recent call last)" in logs["feeds-worker.log"]
    assert "postgresql://syndication:***@db.internal" in logs["feeds-worker.log"]
    for name, text in logs.items():
        assert leaks(text) == [], name
