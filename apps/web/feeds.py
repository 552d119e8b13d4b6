"""Serving the feed files with strong ETags, Last-Modified, 304s and gzip.

The files stay plain files on disk, so nginx or a CDN can serve the same folder instead.
"""
from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, Request, Response

from syndication.errors import ValidationError
from syndication.feeds.catalog import ServedPath, parse_served_path
from syndication.feeds.paging import Paging
from apps.web.context import WebContext


@dataclass(frozen=True)
class _Cached:
    # (inode, mtime_ns, size): a rewritten file gets a new stamp; the inode too, since every write
    # renames a new file into place and a shared volume (NFS) may keep only coarse mtimes.
    stamp: tuple[int, int, int]
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime


class FileCache:
    """Feed bytes, their gzip and ETag, kept until the file changes on disk."""

    def __init__(self) -> None:
        self._items: dict[Path, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> _Cached | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._items.get(path)
        if cached and cached.stamp == stamp:
            return cached
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:32]
        cached = _Cached(stamp, body, gzip.compress(body, 6, mtime=0), f'"{digest}"',
                         datetime.fromtimestamp(int(st.st_mtime), timezone.utc))
        with self._lock:
            self._items[path] = cached
        return cached


def _etag_matches(header: str, etag: str) -> bool:
    # Spec: RFC 9110 §13.1.2 — If-None-Match uses weak comparison; "*" matches any.
    if header.strip() == "*":
        return True
    opaque = etag.strip('"')
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/").strip('"')
        if candidate in (opaque, opaque + "-gzip"):
            return True
    return False


def _not_modified(request: Request, cached: _Cached, etag: str) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        return _etag_matches(inm, etag)
    ims = request.headers.get("if-modified-since")
    if ims:
        # Spec: RFC 9110 §13.1.3 — ignored when If-None-Match is present or the date is invalid.
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return cached.last_modified <= since
    return False


def _max_age(ctx: WebContext, served: ServedPath) -> int:
    """Long for a full archive page (one with a page after it), short for the rest."""
    if served.page is not None:
        # Spec: RFC 5005 §4 — archive documents are stable; clients may cache them for long.
        after = ServedPath(served.spec, served.fmt, served.page + 1).relpath()
        if (ctx.feeds_dir / after).is_file():
            return ctx.archive_max_age_s
    return ctx.cache_max_age_s


def _links(ctx: WebContext, served: ServedPath) -> str:
    """The Link header: each hub, and the document's own URL (its topic)."""
    site = ctx.site.site
    own = Paging(served.page, 0).self_href(site, served.spec, served.fmt)
    # Spec: WebSub §4 — discovery through HTTP Link headers, rel="hub" and rel="self".
    return ", ".join([*(f'<{hub}>; rel="hub"' for hub in site.hubs), f'<{own}>; rel="self"'])


def build_router(ctx: WebContext, cache: FileCache | None = None) -> APIRouter:
    router = APIRouter()
    files = cache or FileCache()

    @router.api_route("/feeds/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def serve_feed(request: Request, path: str) -> Response:
        try:
            served = parse_served_path(path)
        except ValidationError:
            return Response("no such feed\n", status_code=404, media_type="text/plain")
        spec, fmt = served.spec, served.fmt
        cached = files.get(ctx.feeds_dir / served.relpath())
        if cached is None:
            return Response("no such feed\n", status_code=404, media_type="text/plain")
        wants_gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
        # Spec: RFC 9110 §8.8.3 — a strong ETag names one representation, so the gzip variant gets its own.
        etag = f'"{cached.etag.strip(chr(34))}-gzip"' if wants_gzip else cached.etag
        headers = {
            "ETag": etag,
            "Last-Modified": format_datetime(cached.last_modified, usegmt=True),
            "Cache-Control": f"public, max-age={_max_age(ctx, served)}",
            "Vary": "Accept-Encoding",
            "Link": _links(ctx, served),
        }
        if _not_modified(request, cached, etag):
            return Response(status_code=304, headers=headers)
        body = cached.gzipped if wants_gzip else cached.body
        if wants_gzip:
            headers["Content-Encoding"] = "gzip"
        media = fmt.content_type
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return Response(status_code=200, headers=headers, media_type=media)
        return Response(body, status_code=200, headers=headers, media_type=media)

    return router
