"""Feed files on disk: written whole or not at all, never outside the feeds folder,
untouched when nothing changed."""
from __future__ import annotations

import os
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from syndication.errors import ValidationError
from syndication.feeds import (
    ALL,
    FeedSpec,
    WrittenFile,
    content_etag,
    render_formats,
    write_atomically,
    write_feed,
)
from syndication.feeds import files as files_module
from tests.unit.feeds.factories import T0, entries, site

NOW = T0 + timedelta(days=1)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def test_a_new_file_is_written_with_its_folders(tmp_path):
    # Given an empty feeds folder
    target = tmp_path / "section" / "sport.rss"
    # When a feed is written into a folder that does not exist yet
    changed = write_atomically(target, b"<rss/>", tmp_path)
    # Then the folder is created, the bytes are there, and the write is reported
    assert changed is True
    assert target.read_bytes() == b"<rss/>"
    # And the web server (another user) can read it, and no temporary file is left
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert leftovers(tmp_path) == []


def test_identical_content_leaves_the_file_and_its_mtime_alone(tmp_path):
    # Given a feed file written an hour ago
    target = tmp_path / "all.atom"
    write_atomically(target, b"<feed/>", tmp_path)
    an_hour_ago = target.stat().st_mtime - 3600
    os.utime(target, (an_hour_ago, an_hour_ago))
    inode = target.stat().st_ino
    # When the same bytes are written again
    changed = write_atomically(target, b"<feed/>", tmp_path)
    # Then nothing is written: same file, same mtime, reported as unchanged
    assert changed is False
    assert target.stat().st_mtime == an_hour_ago
    assert target.stat().st_ino == inode


def test_changed_content_replaces_the_file(tmp_path):
    target = tmp_path / "all.json"
    write_atomically(target, b'{"items":[]}', tmp_path)
    assert write_atomically(target, b'{"items":[1]}', tmp_path) is True
    assert target.read_bytes() == b'{"items":[1]}'
    # Same size, different bytes: still a change
    assert write_atomically(target, b'{"items":[2]}', tmp_path) is True
    assert target.read_bytes() == b'{"items":[2]}'


def test_a_relative_path_is_taken_inside_the_root(tmp_path):
    assert write_atomically(Path("tag/x.rss"), b"<rss/>", tmp_path) is True
    assert (tmp_path / "tag" / "x.rss").read_bytes() == b"<rss/>"


@pytest.mark.parametrize("escape", [
    "../outside.rss",
    "section/../../outside.rss",
    "{parent}/outside.rss",  # absolute
    ".",
])
def test_paths_outside_the_feeds_folder_are_refused(tmp_path, escape):
    # Given a feeds folder inside a parent folder
    root = tmp_path / "feeds"
    root.mkdir()
    # When asked to write somewhere that resolves outside it (or to the folder itself)
    with pytest.raises(ValidationError):
        write_atomically(root / escape.format(parent=tmp_path), b"x", root)
    # Then nothing was written anywhere
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["feeds"]


def test_a_symlink_out_of_the_feeds_folder_is_refused(tmp_path):
    # Given a folder inside the feeds folder that is a symlink to somewhere else
    root, elsewhere = tmp_path / "feeds", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "section").symlink_to(elsewhere, target_is_directory=True)
    # When a feed is written through it
    with pytest.raises(ValidationError):
        write_atomically(root / "section" / "sport.rss", b"x", root)
    # Then nothing landed outside
    assert list(elsewhere.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    # Given an existing feed file
    target = tmp_path / "all.rss"
    write_atomically(target, b"old", tmp_path)

    # When the final rename fails (disk full, permissions...)
    def broken_replace(src, dst):
        raise OSError("no space left on device")

    monkeypatch.setattr(files_module.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomically(target, b"new", tmp_path)
    # Then readers still see the old file and no temporary file is left behind
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_etag_is_strong_quoted_and_follows_the_bytes():
    etag = content_etag(b"<rss/>")
    # Spec: RFC 9110 §8.8.3 — a strong tag is a quoted string without W/
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert content_etag(b"<rss/>") == etag
    assert content_etag(b"<rss />") != etag


def test_write_feed_writes_every_format_and_reports_each(tmp_path):
    # Given a section feed rendered in every format
    spec = FeedSpec("section", "politics", "Politics")
    rendered = render_formats(spec, entries(2), site(), NOW)
    assert set(rendered) == {"rss", "atom", "json"}
    # When written
    written = write_feed(tmp_path, spec, rendered)
    # Then each file is at its relpath, with the ETag and size of what is on disk
    assert set(written) == {"rss", "atom", "json"}
    for name, result in written.items():
        assert isinstance(result, WrittenFile)
        on_disk = (tmp_path / result.relpath).read_bytes()
        assert on_disk == rendered[name]
        assert result.etag == content_etag(on_disk)
        assert result.size == len(on_disk)
        assert result.changed is True
    assert sorted(w.relpath for w in written.values()) == [
        "section/politics.atom", "section/politics.json", "section/politics.rss"]


def test_rendering_again_without_changes_touches_nothing(tmp_path):
    # Given a feed already written
    items = entries(3)
    write_feed(tmp_path, ALL, render_formats(ALL, items, site(), NOW))
    # When the same entries are rendered again later
    again = write_feed(tmp_path, ALL, render_formats(ALL, items, site(), NOW + timedelta(hours=6)))
    # Then no file changed (so HTTP caches keep their ETags)
    assert [w.changed for w in again.values()] == [False, False, False]


def test_write_feed_refuses_an_unknown_format(tmp_path):
    with pytest.raises(KeyError):
        write_feed(tmp_path, ALL, {"yaml": b"x"})
