"""Flower, the Celery dashboard, watches the real workers behind a login."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import article_json
from tests.support.stack import Stack, free_port, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # nothing here depends on the database: one backend is enough


USER, PASSWORD = "ops", "flower-pass-7"


@pytest.fixture
def flower(stack: Stack) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "flower", f"--port={port}", "--address=127.0.0.1",
         f"--basic-auth={USER}:{PASSWORD}"],
        env=stack.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def workers_seen() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"flower exited with {process.returncode}")
        try:
            r = httpx.get(f"{base}/api/workers", auth=(USER, PASSWORD), params={"refresh": "true"}, timeout=5)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and len(r.json()) >= 2

    try:
        wait_for(workers_seen, 60, interval=0.5, what="flower to see the workers")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_flower_lists_the_render_task_and_asks_for_a_login(stack: Stack, flower: str) -> None:
    # Given Flower watching the stack, when an article is published
    with stack.client() as http:
        assert http.post("/api/v1/articles", json=article_json("flower"), headers=stack.auth()).status_code == 202

    # Then Flower's API lists a render task that succeeded, on one of the stack's workers
    def rendered() -> list[dict[str, object]]:
        r = httpx.get(f"{flower}/api/tasks", auth=(USER, PASSWORD), timeout=5)
        assert r.status_code == 200
        return [t for t in r.json().values() if t.get("name") == "syndication.render_feed"
                and t.get("state") == "SUCCESS"]

    [task, *_] = wait_for(rendered, 30, interval=0.5, what="a successful syndication.render_feed task in flower")
    assert str(task["worker"]).startswith("feeds-")
    # And without the login, or with a wrong one, Flower answers 401
    assert httpx.get(f"{flower}/api/tasks", timeout=5).status_code == 401
    assert httpx.get(f"{flower}/api/tasks", auth=(USER, "wrong"), timeout=5).status_code == 401
    assert httpx.get(f"{flower}/", timeout=5).status_code == 401
