"""A channel that only shows what would be posted: the default when no credentials are set.

Posts are kept in memory and, when a file is given, appended to it as JSON lines, one
line per action, so ``make run`` shows posting without an account anywhere::

    {"action": "post", "id": "…", "url": "https://…", "text": "…", "at": "2026-05-01T09:30:00+00:00"}
    {"action": "post", "id": "…", "url": "https://…", "text": "Correction: …", "at": "…", "reply_to": "…"}
    {"action": "delete", "id": "…", "at": "…"}
    {"action": "add_list_member", "handle": "adareporter", "at": "…"}

Several processes may append to the same file; each line is written with one call.
"""
from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from syndication.channels.base import ChannelKind, PostContext, PostResult, PostRules, social_handle
from syndication.channels.counting import weighted_length
from syndication.errors import AlreadyPosted, PermanentChannelError

log = logging.getLogger(__name__)


class PreviewSettings(BaseModel):
    """The preview channel has no settings: the site TOML turns it on (``[channels.preview]``)."""


# What would be posted on X, the strictest counter: weighted length, X handles.
PREVIEW_RULES = PostRules(length=weighted_length, handle=social_handle("x", r"[A-Za-z0-9_]{1,15}"))


@dataclass(frozen=True)
class PreviewPost:
    """One post the preview channel would have made."""

    remote_id: str
    text: str
    url: str
    posted_at: datetime
    deleted: bool = False
    reply_to: str | None = None

    @property
    def result(self) -> PostResult:
        return PostResult(self.remote_id, _remote_url(self.remote_id))


def _remote_url(remote_id: str) -> str:
    return f"preview://posts/{remote_id}"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class PreviewChannel:
    """Records posts instead of making them. Thread-safe.

    >>> channel = PreviewChannel()
    >>> channel.post("Hello https://ex.org/a1", url="https://ex.org/a1").remote_url.startswith("preview://")
    True
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        name: str = "preview",
        max_weighted_length: int = 280,
        reject_duplicates: bool = False,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``path``: a JSON-lines file under the data folder to append to (created on first
        write). ``reject_duplicates``: refuse a text posted before, as X does."""
        self.name = name
        self.max_weighted_length = max_weighted_length
        self.path = Path(path) if path is not None else None
        self._reject_duplicates = reject_duplicates
        self._clock = clock
        self._lock = threading.Lock()
        self._posts: list[PreviewPost] = []
        self._list_members: list[str] = []

    # -- the Channel protocol ------------------------------------------------------------

    def post(self, text: str, *, url: str, context: PostContext | None = None,
             reply_to: str | None = None) -> PostResult:
        """Record ``text`` as posted (as a reply to ``reply_to``, when given). Raises
        ``AlreadyPosted`` for a repeated text when ``reject_duplicates`` is on,
        ``PermanentChannelError`` if the file cannot be written."""
        with self._lock:
            if self._reject_duplicates and any(p.text == text for p in self._live_posts()):
                raise AlreadyPosted(f"{self.name}: this text was posted before")
            post = PreviewPost(uuid.uuid4().hex, text, url, self._clock(), reply_to=reply_to)
            self._append({"action": "post", "id": post.remote_id, "url": url, "text": text,
                          "at": post.posted_at.isoformat(), **({"reply_to": reply_to} if reply_to else {})})
            self._posts.append(post)
        log.info("preview post", extra={"channel": self.name, "remote_id": post.remote_id, "url": url})
        return post.result

    def delete(self, remote_id: str, *, context: PostContext | None = None) -> None:
        """Mark a post deleted; unknown ids are ignored, as a post already gone."""
        with self._lock:
            self._append({"action": "delete", "id": remote_id, "at": self._clock().isoformat()})
            self._posts = [
                replace(p, deleted=True) if p.remote_id == remote_id else p
                for p in self._posts
            ]

    def find_post(self, url: str, *, text: str | None = None) -> PostResult | None:
        """The newest live post linking to ``url`` (and of ``text``, when given): from the file
        when there is one (so a restarted process sees earlier posts), else from memory."""
        with self._lock:
            posts = list(self._file_posts()) if self.path is not None else self._posts
            for post in reversed(posts):
                if not post.deleted and (post.url == url or url in post.text.split()) \
                        and (text is None or post.text == text):
                    return post.result
        return None

    def add_list_member(self, handle: str) -> None:
        """Record that ``handle`` would be added to the staff list."""
        handle = handle.lstrip("@")
        with self._lock:
            self._append({"action": "add_list_member", "handle": handle, "at": self._clock().isoformat()})
            if handle.casefold() not in (h.casefold() for h in self._list_members):
                self._list_members.append(handle)

    # -- inspection, for tests and the CLI ---------------------------------------------

    @property
    def posts(self) -> list[PreviewPost]:
        """Every post this instance made, deleted ones included, oldest first."""
        with self._lock:
            return list(self._posts)

    @property
    def list_members(self) -> list[str]:
        """Handles added to the staff list by this instance."""
        with self._lock:
            return list(self._list_members)

    # -- internals -----------------------------------------------------------------------

    def _live_posts(self) -> Iterator[PreviewPost]:
        return (p for p in self._posts if not p.deleted)

    def _append(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps({"channel": self.name, **record}, ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as exc:
            raise PermanentChannelError(f"{self.name}: cannot write {self.path}: {exc.strerror}") from exc

    def _file_posts(self) -> Iterator[PreviewPost]:
        """Replay the file's posts and deletions for this channel, oldest first."""
        assert self.path is not None
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise PermanentChannelError(f"{self.name}: cannot read {self.path}: {exc.strerror}") from exc
        posts: dict[str, PreviewPost] = {}
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash mid-write
            if record.get("channel", self.name) != self.name:
                continue
            if record.get("action") == "post":
                posts[record["id"]] = PreviewPost(record["id"], record.get("text", ""), record.get("url", ""),
                                                  datetime.fromisoformat(record["at"]),
                                                  reply_to=record.get("reply_to"))
            elif record.get("action") == "delete" and record.get("id") in posts:
                old = posts[record["id"]]
                posts[old.remote_id] = replace(old, deleted=True)
        yield from posts.values()


# This kind, as the registry (``syndication.channels.registry.CHANNEL_KINDS``) loads it.
KIND = ChannelKind(settings=PreviewSettings, rules=PREVIEW_RULES,
                   build=lambda a: PreviewChannel(a.data_dir / "preview-posts.jsonl", name=a.name))
