"""`syndication run --api-workers 2`: two real API processes on one port share logins and feeds,
one that dies is started again, a restart keeps the operator logged in, and neither SIGTERM nor
a killed runner leaves a process behind.

To know which process answers, the test freezes the other (SIGSTOP): the kernel then hands
every new connection on the shared socket to the one still running.
"""
from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from apps.web.ops import COOKIE
from tests.conftest import article_json
from tests.support.product import Product
from tests.support.stack import SITE_TOML, wait_for

pytestmark = pytest.mark.integration
TOKEN = "api-workers-token-0123456789abcdef"
OPS_TOKEN = "api-workers-ops-token-0123456789"
ACTOR = "ops:" + hashlib.sha256(OPS_TOKEN.encode()).hexdigest()[:6]


def api_processes(product: Product) -> list[int]:
    """The product's API processes (`syndication serve --fd`), oldest first."""
    found = []
    for pid in product.group_alive():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and b"--fd" in argv:
            found.append(pid)
    return sorted(found)


@contextmanager
def only(pid: int, of: list[int]) -> Iterator[None]:
    """While inside, every new connection is served by ``pid``: the others are frozen."""
    others = [p for p in of if p != pid]
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def ops_page(product: Product, cookie: str) -> httpx.Response:
    return httpx.get(f"{product.base}/ops", cookies={COOKIE: cookie}, follow_redirects=False, timeout=30)


@pytest.mark.timeout(420)
def test_two_api_processes_share_logins_and_feeds_and_survive_crashes_and_restarts(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE_TOML)
    env = {"SYNDICATION_CONFIG": str(tmp_path / "site.toml"), "SYNDICATION_API_TOKENS": TOKEN,
           "SYNDICATION_OPS_TOKENS": OPS_TOKEN, "SYNDICATION_API_WORKERS": "2"}
    # Given the product started with two API processes
    product = Product(tmp_path, env).start(timeout=180)
    try:
        a, b = wait_for(lambda: (found := api_processes(product)) and len(found) == 2 and found, 30,
                        what="two API processes")
        # When an operator logs in on process A
        with only(a, of=[a, b]):
            login = httpx.post(f"{product.base}/ops/login", data={"token": OPS_TOKEN, "next": "/ops"}, timeout=30)
        assert login.status_code == 303 and COOKIE in login.cookies
        cookie = login.cookies[COOKIE]
        # Then process B knows the session
        with only(b, of=[a, b]):
            page = ops_page(product, cookie)
        assert page.status_code == 200 and ACTOR in page.text

        # Given an article published and rendered
        published = httpx.post(f"{product.base}/api/v1/articles", json=[article_json("w-1")],
                               headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert published.status_code == 202
        wait_for(lambda: "https://news.test.example/a/w-1" in product.feed_links(), 30, interval=0.2,
                 what="the article in all.rss")
        # When a reader fetches all.rss from A, then polls B with its ETag, B answers 304
        with only(a, of=[a, b]):
            first = httpx.get(f"{product.base}/feeds/all.rss", timeout=10)
        with only(b, of=[a, b]):
            again = httpx.get(f"{product.base}/feeds/all.rss", headers={"If-None-Match": first.headers["etag"]},
                              timeout=10)
        assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]

        # When process A dies, it is started again, and the new one knows the session too
        os.kill(a, signal.SIGKILL)
        new = wait_for(lambda: (found := api_processes(product)) and len(found) == 2 and a not in found
                       and [p for p in found if p != b], 60, interval=0.2, what="process A started again")[0]
        with only(new, of=[new, b]):
            assert wait_for(lambda: ops_page(product, cookie).status_code == 200, 60, interval=0.5,
                            what="the new process to serve the session")
    finally:
        # When the product gets SIGTERM, it stops, and no process is left behind
        assert product.terminate() == 0
    assert product.group_alive() == []

    # When it is started again on the same data folder, the operator is still logged in
    product.start(timeout=180)
    try:
        page = ops_page(product, cookie)
        assert page.status_code == 200 and ACTOR in page.text
        assert len(api_processes(product)) == 2
    finally:
        # When the runner alone is killed (no chance to clean up), the kernel stops its children:
        # no API process is left holding the port
        assert product.process is not None
        os.kill(product.process.pid, signal.SIGKILL)
        product.process.wait()
        wait_for(lambda: product.group_alive() == [], 60, interval=0.2, what="every child to die with the runner")
