"""Reading article JSON from files, folders, NDJSON and standard input (the backfill path)."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = {".json", ".ndjson", ".jsonl"}


@dataclass(frozen=True)
class Record:
    """One article's raw JSON and where it came from (``file:line`` or ``file[index]``)."""

    where: str
    data: Any


@dataclass(frozen=True)
class Unreadable:
    """A source that is not JSON at all."""

    where: str
    reason: str


def _records(text: str, name: str) -> Iterator[Record | Unreadable]:
    # Spec: RFC 8259 §8.1 — parsers MAY ignore a byte order mark; Windows editors and
    # CMS exports write one, and json.loads refuses it.
    text = text.removeprefix("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        return
    if stripped[0] in "[{":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None  # may still be NDJSON: one object per line
        else:
            if isinstance(doc, list):
                yield from (Record(f"{name}[{i}]", item) for i, item in enumerate(doc))
            else:
                yield Record(name, doc)
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Record(f"{name}:{number}", json.loads(line))
        except json.JSONDecodeError as exc:
            yield Unreadable(f"{name}:{number}", f"not JSON: {exc.msg}")


def read_sources(paths: list[str]) -> Iterator[Record | Unreadable]:
    """Every article record in the given files, folders (recursively) and ``-`` (stdin)."""
    for raw in paths:
        if raw == "-":
            yield from _records(sys.stdin.read(), "<stdin>")
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            files = [path]
        else:
            yield Unreadable(raw, "no such file or folder")
            continue
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                yield Unreadable(str(file), f"cannot read: {exc}")
                continue
            yield from _records(text, str(file))
