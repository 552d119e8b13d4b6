"""An operator, in a real browser, logs in to /ops, finds a post that failed, reads the article's
timeline, retries it and watches it go out — once.

Runs Debian's /usr/bin/chromium through Playwright (never a downloaded browser). Skipped when it
is missing, except in CI (``CI`` set), where `.ci/run` installs it and a missing one fails.
Takes three screenshots; only with ``SYNDICATION_SCREENSHOTS`` set (``make screenshots``) are they
written over the tracked ones in docs/screenshots/ that the README shows, otherwise to a temporary folder.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from syndication.store.deliveries import list_deliveries
from tests.conftest import article_json
from tests.support.stack import Stack, wait_for
from tests.support.x_standin import XStandIn

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOTS_ENV = "SYNDICATION_SCREENSHOTS"
OPS_TOKEN = "ops-browser-token-2718281828459045"
SITE = """
[site]
title = "Harbour Gazette"
base_url = "https://news.test.example/"
timezone = "UTC"

[feeds]
sections = "*"
authors = "*"
tags = "*"

[social]
max_age_hours = 24

[channels.x]
template = "{{ title }} {{ url }}"
max_attempts = 2
"""


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the screenshots go: docs/screenshots/ when asked for (``make screenshots``), else tmp."""
    folder = DOCS_SCREENSHOTS if os.environ.get(SCREENSHOTS_ENV) else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def x() -> Iterator[XStandIn]:
    with XStandIn(secrets=("cs-browser", "ats-browser")) as standin:
        yield standin


@pytest.fixture
def stack(tmp_path: Path, x: XStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # X credentials in the environment, as in production: the workers and the web service read them.
    for name, value in {"CONSUMER_KEY": "ck-browser", "CONSUMER_SECRET": "cs-browser", "ACCESS_TOKEN": "at-browser",
                        "ACCESS_TOKEN_SECRET": "ats-browser", "API_BASE_URL": x.url}.items():
        monkeypatch.setenv(f"SYNDICATION_X__{name}", value)
    running = Stack(tmp_path / "stack", extra_env={"ops_tokens": OPS_TOKEN}, site_toml=SITE).start()
    yield running
    running.stop()


@pytest.fixture
def page(chromium: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only once Chromium is known present

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def x_delivery(stack: Stack, article_id: str):  # type: ignore[no-untyped-def]
    with stack.runtime.store.read() as session:
        found = [d for d in list_deliveries(session, channel="x") if d.article_id == article_id]
    return found[0] if found else None


@pytest.mark.timeout(240)
def test_an_operator_retries_a_failed_post_from_the_ops_page(stack: Stack, x: XStandIn, page,  # type: ignore[no-untyped-def]
                                                            screenshots: Path) -> None:
    # Given a newsroom with a few older stories in its feeds (too old to be posted)...
    with stack.client() as http:
        backlog = [article_json(i, title=t) for i, t in enumerate(
            ["Budget vote set for Thursday", "Harbour dredging resumes", "New bike lanes on Quay Street"], 1)]
        assert http.post("/api/v1/articles", json=backlog, headers=stack.auth()).status_code == 202
        # ...and X failing every post with 503, so today's story fails after its two attempts
        x.fail_next(20, 503, method="POST", path="/2/tweets")
        story = article_json("tram", title="Council approves the harbour tram line",
                             published_at=datetime.now(timezone.utc).isoformat(), section="City")
        assert http.post("/api/v1/articles", json=story, headers=stack.auth()).status_code == 202
    failed = wait_for(lambda: (lambda d: d if d and d.state == "failed" else None)(x_delivery(stack, "art-tram")),
                      60, interval=0.3, what="the X delivery to fail")
    assert x.tweets == []
    # X is healthy again: its remaining scripted faults are dropped through the control API
    assert httpx.post(f"{x.url}/_standin/reset", timeout=5).status_code == 200

    # When the operator opens /ops, is sent to the login form, and logs in with the ops token
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{stack.base}/ops")
    assert "/ops/login" in page.url
    page.fill("#token", OPS_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base}/ops")
    # Then the overview names the failure, in the problems and the failed deliveries table
    assert "1 failed delivery (x: 1)" in page.inner_text("#problems")
    assert page.locator("#channels tr[data-channel='x'] [data-state]").inner_text() == "active"
    row = page.locator(f"table.failures tr[data-delivery='{failed.id}']")
    assert "HTTP 503" in row.inner_text() or "503" in row.inner_text()
    page.screenshot(path=str(screenshots / "ops-overview.png"), full_page=True)
    # And its status part refreshes itself from /ops/status.json (the inline script runs under the CSP)
    refreshed = page.inner_text("#refreshed")
    page.wait_for_function("was => document.getElementById('refreshed').textContent !== was", arg=refreshed,
                           timeout=15000)

    # When they search for the article by its URL
    page.fill("header input[name=q]", str(story["url"]))
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(f"{stack.base}/ops/articles/art-tram")
    # Then its timeline tells the story: stored, rendered into feeds, two attempts, failed
    steps = page.locator("#timeline tr[data-kind]").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert steps[0] == "stored" and "rendered" in steps
    assert steps.count("delivery.attempt") == 2 and steps[-1] == "delivery.failed"
    delivery_row = page.locator(f"#deliveries tr[data-delivery='{failed.id}']")
    assert delivery_row.locator("[data-state]").inner_text() == "failed"
    page.screenshot(path=str(screenshots / "ops-article-timeline.png"), full_page=True)

    # When they click Retry
    delivery_row.get_by_role("button", name="Retry").click()
    page.wait_for_load_state()
    assert "is pending again" in page.inner_text("main")

    # Then, reloading, they watch it posted, with a link to the post
    def posted() -> bool:
        page.reload()
        return page.locator(f"#deliveries tr[data-delivery='{failed.id}'] [data-state]").inner_text() == "posted"

    wait_for(posted, 60, interval=1.0, what="the page to show the delivery posted")
    timeline = page.locator("#timeline").inner_text()
    assert "ops.retry" in timeline and "delivery.posted" in timeline
    page.screenshot(path=str(screenshots / "ops-failed-retry.png"), full_page=True)
    assert errors == []  # no script error, no Content-Security-Policy violation
    # And X holds exactly one post of the story
    assert len(x.tweets) == 1 and len(x.live_tweets) == 1
    assert str(story["url"]) in x.tweets[0].original_text
