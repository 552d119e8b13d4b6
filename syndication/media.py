"""Fetching an article's image to post it as media, carefully.

The image URL comes from the CMS, so fetching it is a request this service makes on someone
else's word. It is fetched only from the hosts the site allows (by default the site's own
host), over http(s), at most ``MAX_BYTES``, only when it says it is ``image/*``, within a
timeout, and redirects are followed only to allowed hosts. Anything else raises
``MediaRefused``: the post then goes without the image.

Usage::

    media = fetch_image(article.image.url, alt=article.image.alt, allowed_hosts={"news.example.org"})
"""
from __future__ import annotations

import time
from collections.abc import Collection
from urllib.parse import urljoin, urlsplit

import requests

from syndication.channels.base import Media
from syndication.errors import MediaRefused

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT_S = 5.0
_MAX_REDIRECTS = 3
_CHUNK = 64 * 1024


def allowed(url: str, hosts: Collection[str]) -> bool:
    """Whether ``url`` is http(s) on one of ``hosts`` (exact host names, any case)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in {h.lower() for h in hosts}


def fetch_image(url: str, *, alt: str | None, allowed_hosts: Collection[str], max_bytes: int = MAX_BYTES,
                timeout_s: float = TIMEOUT_S, session: requests.Session | None = None) -> Media:
    """The image at ``url`` as ``Media``. Raises ``MediaRefused`` saying why not (a host not
    allowed, a redirect elsewhere, not an image, too large, too slow, unreachable)."""
    http = session or requests.Session()
    deadline = time.monotonic() + timeout_s
    for _ in range(_MAX_REDIRECTS + 1):
        if not allowed(url, allowed_hosts):
            raise MediaRefused(f"image host {urlsplit(url).hostname or url} is not allowed")
        try:
            response = http.get(url, stream=True, allow_redirects=False, timeout=timeout_s,
                                headers={"Accept": "image/*"})
        except requests.RequestException as exc:
            raise MediaRefused(f"image not fetched: {type(exc).__name__}") from exc
        with response:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("location", ""))
                continue
            if response.status_code != 200:
                raise MediaRefused(f"image not fetched: HTTP {response.status_code}")
            mime = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
            if not mime.startswith("image/"):
                raise MediaRefused(f"not an image: {mime or 'no content type'}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise MediaRefused(f"image too large: {int(declared)} bytes (at most {max_bytes})")
            data = _read(response, max_bytes, deadline)
        return Media(data=data, mime=mime, alt=alt, url=url)
    raise MediaRefused(f"image not fetched: more than {_MAX_REDIRECTS} redirects")


def _read(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    """The body, refusing more than ``max_bytes`` (whatever Content-Length said) or a slow trickle."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise MediaRefused(f"image too large: more than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise MediaRefused("image not fetched: too slow")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise MediaRefused(f"image not fetched: {type(exc).__name__}") from exc
    return b"".join(chunks)
