"""Fetching an article's image for a post: only from allowed hosts, only images, at most 5 MB,
within a timeout, never redirected elsewhere. A real local HTTP server plays the site."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from syndication.errors import MediaRefused
from syndication.media import fetch_image
from tests.support.image_host import PNG, image_host


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with image_host() as base:
        yield base


HOSTS = {"127.0.0.1"}


def test_an_image_on_an_allowed_host_is_fetched_with_its_alt_text(site: str) -> None:
    media = fetch_image(f"{site}/ok.png", alt="A harbour at dawn", allowed_hosts=HOSTS)
    assert (media.data, media.mime, media.alt) == (PNG, "image/png", "A harbour at dawn")


def test_a_redirect_on_the_same_host_is_followed(site: str) -> None:
    assert fetch_image(f"{site}/moved.png", alt=None, allowed_hosts=HOSTS).data == PNG


@pytest.mark.parametrize(("path", "hosts", "reason"), [
    ("/ok.png", {"news.example.org"}, "image host 127.0.0.1 is not allowed"),
    ("/away.png", HOSTS, "image host localhost is not allowed"),
    ("/page", HOSTS, "not an image: text/html"),
    ("/missing.png", HOSTS, "image not fetched: HTTP 404"),
    ("/huge.png", HOSTS, "image too large: 6291456 bytes"),
    ("/liar.png", HOSTS, "image too large: more than 5242880 bytes"),
])
def test_an_image_that_breaks_a_rule_is_refused_saying_why(site: str, path: str, hosts: set[str], reason: str) -> None:
    with pytest.raises(MediaRefused) as caught:
        fetch_image(f"{site}{path}", alt=None, allowed_hosts=hosts)
    assert str(caught.value).startswith(reason)


def test_a_slow_image_is_given_up(site: str) -> None:
    with pytest.raises(MediaRefused, match="not fetched"):
        fetch_image(f"{site}/slow.png", alt=None, allowed_hosts=HOSTS, timeout_s=0.5)


def test_only_http_is_fetched() -> None:
    with pytest.raises(MediaRefused, match="not allowed"):
        fetch_image("file:///etc/passwd", alt=None, allowed_hosts={""})
