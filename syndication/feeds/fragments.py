"""A feed as a frame around item fragments, and the cache that lets a render reuse them.

Every format is written in two parts: the frame (the document's head and tail: channel
or feed elements, dates, self and hub links), built on every render, and one fragment
per item, whose bytes depend only on the stored article and the site. A document is
``head + separator.join(fragments) + tail``, so an item that has not changed since the
last render can be joined in from the cache instead of being serialised again.

>>> cache = FragmentCache()
>>> cache.get_or_build(("rss", "1", "site", "a1", 1, when), lambda: b"<item/>")
b'<item/>'
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from config import SiteInfo

# Bodies may be up to 2,000,000 characters, so the bound is on bytes, not on entries.
# 16 MiB holds the three formats of about a thousand articles of 5 KB: the windows of
# the twenty or so feeds a newsroom's latest articles land in, in each worker process,
# for at most a sixth of a feed worker's memory (bench/memory.py holds it to a 1.2 ratio
# between 1,000 and 100,000 articles stored, and a full cache is the same size in both).
DEFAULT_MAX_BYTES = 16 * 2**20
# What an entry costs beyond its bytes: the key tuple, its id string and datetime, the
# dict node and the bytes object's header, roughly.
_ENTRY_OVERHEAD = 256
# One fragment larger than this share of the cache is built every time rather than
# pushing out dozens of ordinary ones.
_LARGEST_SHARE = 8


@dataclass(frozen=True)
class Frame:
    """The parts of a document around its items: ``head`` + items + ``tail``."""

    head: bytes
    tail: bytes
    separator: bytes = b""

    def join(self, fragments: Sequence[bytes]) -> bytes:
        """The whole document, items in the order given."""
        return b"".join((self.head, self.separator.join(fragments), self.tail))


def site_fingerprint(site: SiteInfo) -> str:
    """A short hash of every site setting, for cache keys: a changed setting misses.

    Every field is included, not only those items read today (the host in ids, the
    language), so a future use of another field cannot serve stale fragments.
    """
    return hashlib.sha256(site.model_dump_json().encode("utf-8")).hexdigest()[:16]


class FragmentCache:
    """Serialised item fragments in memory, least recently used evicted first.

    Bounded by the total size of the fragments (``max_bytes``). Safe to share between
    threads; each process has its own (nothing is written to disk or the database: a
    fragment is cheaper to rebuild than to fetch from anywhere but memory).
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes held, counting each entry's bookkeeping as well as its fragment."""
        return self._size

    def get_or_build(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """The fragment cached under ``key``, else ``build()``, cached for next time."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        data = build()  # outside the lock: another thread may build the same; both agree
        cost = len(data) + _ENTRY_OVERHEAD
        if cost * _LARGEST_SHARE > self.max_bytes:
            return data
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old) + _ENTRY_OVERHEAD
            self._entries[key] = data
            self._size += cost
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted) + _ENTRY_OVERHEAD
        return data

    def clear(self) -> None:
        """Forget every fragment (counters stay)."""
        with self._lock:
            self._entries.clear()
            self._size = 0
