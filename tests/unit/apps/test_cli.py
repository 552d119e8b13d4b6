"""The `syndication` command, as an operator uses it: import a backfill, render, inspect, withdraw."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from apps.cli.app import app
from syndication.store import Store
from syndication.store.schema import OutboxRow
from tests.conftest import article_json

SITE_TOML = """
[site]
title = "CLI Gazette"
base_url = "https://cli.test.example/"
timezone = "Europe/Berlin"

[feeds]
items = 20
sections = "*"
authors = "*"
tags = "*"
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An operator's working folder: a site TOML and an empty data folder, and nothing else set."""
    for name in list(os.environ):
        if name.startswith("SYNDICATION_") and not name.startswith("SYNDICATION_TEST_"):
            monkeypatch.delenv(name)
    (tmp_path / "syndication.toml").write_text(SITE_TOML, encoding="utf-8")
    monkeypatch.setenv("SYNDICATION_CONFIG", str(tmp_path / "syndication.toml"))
    monkeypatch.setenv("SYNDICATION_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SYNDICATION_LOG_LEVEL", "WARNING")
    # The CLI points the root logger at the stream it was given; put pytest's back afterwards.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield tmp_path
    root.handlers[:], root.level = handlers, level


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def rss(home: Path, key: str = "all") -> Any:
    return feedparser.parse((home / "var" / "feeds" / f"{key}.rss").read_bytes())


def titles(home: Path, key: str = "all") -> list[str]:
    return sorted(e.title for e in rss(home, key).entries)


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def write_ndjson(path: Path, lines: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) if not isinstance(x, str) else x
                              for x in lines) + "\n", encoding="utf-8")
    return path


def outbox_size(home: Path) -> int:
    store = Store.from_url(f"sqlite:///{home / 'var' / 'syndication.db'}", migrate_schema=False)
    try:
        with store.read() as session:
            return session.scalar(select(func.count()).select_from(OutboxRow)) or 0
    finally:
        store.dispose()


def assert_clean_failure(result: Result) -> None:
    """Non-zero, a message for a person, and no Python traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + result.stderr


# --- import ------------------------------------------------------------------------------

def test_importing_a_json_file_stores_and_renders_it(home: Path) -> None:
    # Given a JSON file holding an array of two articles
    source = write_json(home / "backfill.json", [article_json(1), article_json(2, title="Ünïcode ⚽")])
    # When the operator imports it
    result = run("import", str(source))
    # Then it succeeds and the main feed on disk lists both
    assert result.exit_code == 0, result.output + result.stderr
    assert "stored 2 article(s), refused 0" in result.output
    assert titles(home) == ["Article 1", "Ünïcode ⚽"]
    # And the per-section feed was rendered too
    assert titles(home, "section/politics") == ["Article 1", "Ünïcode ⚽"]


def test_importing_a_folder_reads_every_json_and_ndjson_file_in_it(home: Path) -> None:
    # Given an archive folder with a single-article file, an array file and an NDJSON file nested inside
    folder = home / "archive"
    write_json(folder / "one.json", article_json(1))
    write_json(folder / "2025" / "many.json", [article_json(2), article_json(3)])
    write_ndjson(folder / "2024" / "lines.ndjson", [article_json(4), article_json(5)])
    (folder / "notes.txt").write_text("not an article", encoding="utf-8")
    # When the operator imports the folder
    result = run("import", str(folder))
    # Then all five articles are stored and in the feed, and the text file is ignored
    assert result.exit_code == 0, result.output + result.stderr
    assert titles(home) == [f"Article {n}" for n in range(1, 6)]


def test_importing_ndjson_from_standard_input(home: Path) -> None:
    # Given articles piped in as NDJSON
    lines = "\n".join(json.dumps(article_json(n)) for n in (1, 2, 3)) + "\n"
    # When the operator imports "-"
    result = run("import", "-", stdin=lines)
    # Then they are stored and rendered
    assert result.exit_code == 0, result.output + result.stderr
    assert titles(home) == ["Article 1", "Article 2", "Article 3"]


def test_a_file_saved_with_a_byte_order_mark_imports(home: Path) -> None:
    # Given a JSON array and an NDJSON file exported by a Windows tool, each starting with a BOM
    array = home / "export.json"
    array.write_text("\ufeff" + json.dumps([article_json(1), article_json(2)]), encoding="utf-8")
    lines = home / "export.ndjson"
    lines.write_text("\ufeff" + "\n".join(json.dumps(article_json(n)) for n in (3, 4)), encoding="utf-8")
    # When both are imported
    result = run("import", str(array), str(lines))
    # Then every article is stored, none refused
    assert result.exit_code == 0, result.output + result.stderr
    assert titles(home) == [f"Article {n}" for n in range(1, 5)]


def test_a_refused_article_is_reported_with_where_and_why_and_the_rest_is_stored(home: Path) -> None:
    # Given an NDJSON file whose second line has a relative URL and third line is not JSON,
    # and a JSON array whose second item has no title
    lines = write_ndjson(home / "lines.ndjson", [article_json(1), article_json(2, url="/a/2"), "{not json",
                                                 article_json(3)])
    array = write_json(home / "array.json", [article_json(4), {k: v for k, v in article_json(5).items()
                                                                if k != "title"}])
    # When both are imported
    result = run("import", str(lines), str(array))
    # Then each refusal names its file and line (or index) and the reason
    report = result.stderr
    assert f"{lines}:2" in report and "url" in report and "absolute http(s) URL" in report
    assert f"{lines}:3" in report and "not JSON" in report
    assert f"{array}[1]" in report and "title" in report
    # And the command exits 1 so a script notices
    assert result.exit_code == 1
    assert "Traceback" not in result.output + report
    # But the good articles were stored and rendered all the same
    assert titles(home) == ["Article 1", "Article 3", "Article 4"]


def test_a_missing_path_is_reported_not_crashed_on(home: Path) -> None:
    # Given a path that does not exist
    result = run("import", str(home / "nope.json"))
    # Then it is reported as refused, with exit code 1 and no traceback
    assert result.exit_code == 1
    assert "nope.json" in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_imported_articles_are_never_announced(home: Path) -> None:
    # Given a backfill of three articles
    source = write_ndjson(home / "lines.ndjson", [article_json(n) for n in (1, 2, 3)])
    # When it is imported, twice (an operator re-running the same job)
    assert run("import", str(source)).exit_code == 0
    assert run("import", str(source)).exit_code == 0
    # Then the outbox holds nothing, so nothing will ever be posted to social media for them
    assert outbox_size(home) == 0


@pytest.mark.parametrize("content", ["", "\n  \n", "[]"])
def test_importing_a_file_without_articles_says_so_and_fails(home: Path, content: str) -> None:
    # Given an export that came out empty
    source = home / "empty.json"
    source.write_text(content, encoding="utf-8")
    # When the operator imports it
    result = run("import", str(source))
    # Then they hear the file holds no articles, and the command fails
    assert_clean_failure(result)
    assert result.exit_code == 1 and "holds no articles" in result.stderr
    assert "stored 0" not in result.output


def test_import_can_answer_in_json(home: Path) -> None:
    source = write_ndjson(home / "lines.ndjson", [article_json(1), {"id": "x"}])
    # When a script imports with --json
    result = run("import", "--json", str(source))
    # Then stdout is one JSON document saying what happened
    report = json.loads(result.stdout)
    assert report["stored"] == 1
    assert [r["where"] for r in report["refused"]] == [f"{source}:2"]
    assert result.exit_code == 1


# --- render ------------------------------------------------------------------------------

def test_render_all_rewrites_every_feed(home: Path) -> None:
    # Given an import that did not render
    source = write_json(home / "a.json", [article_json(1), article_json(2, section="Sport")])
    assert run("import", "--no-render", str(source)).exit_code == 0
    assert not (home / "var" / "feeds" / "all.rss").exists()
    # When the operator renders everything
    result = run("render", "--all", "--json")
    # Then every feed exists in every format
    assert result.exit_code == 0, result.output + result.stderr
    rendered = {r["feed"]: r["items"] for r in json.loads(result.stdout)}
    assert rendered["all"] == 2 and rendered["section/sport"] == 1 and rendered["section/politics"] == 1
    for key in rendered:
        for ext in ("rss", "atom", "json"):
            assert (home / "var" / "feeds" / f"{key}.{ext}").is_file()
    assert titles(home, "section/sport") == ["Article 2"]


def test_render_all_refiles_after_a_feeds_change_and_deletes_feeds_that_no_longer_exist(home: Path) -> None:
    # Given two articles imported while every tag had a feed, and no section feeds were wanted
    config = home / "syndication.toml"
    config.write_text(SITE_TOML.replace('sections = "*"', "sections = []"), encoding="utf-8")
    source = write_json(home / "a.json", [article_json(1, tags=["Budget"]), article_json(2, section="Sport",
                                                                                         tags=["Budget", "Derby"])])
    assert run("import", str(source)).exit_code == 0
    assert (home / "var" / "feeds" / "tag/derby.rss").is_file()
    assert not (home / "var" / "feeds" / "section/sport.rss").exists()
    # When [feeds] changes (sections on, only the Budget tag) and the operator renders everything
    config.write_text(SITE_TOML.replace('tags = "*"', 'tags = ["Budget"]'), encoding="utf-8")
    result = run("render", "--all", "--json")
    # Then the articles are in the feeds the new rules give them
    assert result.exit_code == 0, result.output + result.stderr
    assert titles(home, "section/sport") == ["Article 2"] and titles(home, "section/politics") == ["Article 1"]
    assert titles(home, "tag/budget") == ["Article 1", "Article 2"]
    # And the feed that no longer exists is gone, in every format, and the operator is told
    assert not any((home / "var" / "feeds" / f"tag/derby.{ext}").exists() for ext in ("rss", "atom", "json"))
    assert "tag/derby" not in {r["feed"] for r in json.loads(result.stdout)}
    assert "re-filed 2 article(s)" in result.stderr and "no longer exist: tag/derby" in result.stderr


def test_render_one_feed_by_key(home: Path) -> None:
    # Given an empty store
    # When the operator renders a section nobody has written for yet
    result = run("render", "section/x")
    # Then an empty but valid feed is written
    assert result.exit_code == 0, result.output + result.stderr
    feed = rss(home, "section/x")
    assert feed.bozo == 0 and feed.entries == []
    assert "CLI Gazette" in feed.feed.title


@pytest.mark.parametrize("key", ["../../etc", "section/../../etc", "nope/x"])
def test_rendering_a_bad_key_fails_cleanly(home: Path, key: str) -> None:
    # When the operator (or a script) passes a key that is not a feed
    result = run("render", key)
    # Then it is refused with a message, not a traceback, and nothing is written outside the feeds folder
    assert_clean_failure(result)
    assert "not a feed key" in result.stderr
    assert not (home / "etc").exists() and not (home / "var" / "etc").exists()


def test_render_without_a_feed_says_what_to_do(home: Path) -> None:
    result = run("render")
    assert_clean_failure(result)
    assert "--all" in result.stderr


# --- articles ----------------------------------------------------------------------------

@pytest.fixture
def imported(home: Path) -> Path:
    source = write_json(home / "a.json", [article_json(1), article_json(2, title="Second")])
    assert run("import", str(source)).exit_code == 0
    return home


def test_articles_list_as_json(imported: Path) -> None:
    # When a script lists articles with --json
    result = run("articles", "list", "--json")
    # Then it gets a JSON list of summaries, newest first
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["id"], r["status"], r["origin"], r["revision"]) for r in rows] == [
        ("art-2", "published", "import", 1), ("art-1", "published", "import", 1)]


def test_articles_list_as_a_table(imported: Path) -> None:
    result = run("articles", "list")
    assert result.exit_code == 0
    assert "art-1" in result.output and "Second" in result.output


def test_articles_show_includes_the_timeline(imported: Path) -> None:
    # When the operator looks at one article as JSON
    result = run("articles", "show", "art-1", "--json")
    # Then they see the article and its story so far: imported, then rendered into its feeds
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["id"] == "art-1" and shown["article"]["title"] == "Article 1"
    kinds = [step["kind"] for step in shown["timeline"]]
    assert kinds[0] == "imported"
    assert "rendered" in kinds
    assert {step["feed"] for step in shown["timeline"] if step["kind"] == "rendered"} >= {"all", "section/politics"}


def test_articles_show_of_an_unknown_id_fails_cleanly(imported: Path) -> None:
    result = run("articles", "show", "art-404")
    assert_clean_failure(result)
    assert "art-404" in result.stderr


def test_articles_unpublish_takes_it_out_of_the_feeds(imported: Path) -> None:
    # Given two imported articles in the main feed
    assert titles(imported) == ["Article 1", "Second"]
    # When the operator withdraws one
    result = run("articles", "unpublish", "art-1")
    # Then it leaves every rendered feed, and is listed as withdrawn
    assert result.exit_code == 0, result.output + result.stderr
    assert "withdrawn" in result.output
    assert titles(imported) == ["Second"]
    assert titles(imported, "section/politics") == ["Second"]
    shown = json.loads(run("articles", "show", "art-1", "--json").stdout)
    assert shown["status"] == "withdrawn"


def test_unpublishing_an_unknown_id_fails_cleanly(imported: Path) -> None:
    result = run("articles", "unpublish", "art-404")
    assert_clean_failure(result)
    assert "art-404" in result.stderr


def test_articles_share_asks_for_a_post_again_and_records_who(imported: Path) -> None:
    # When an operator shares an imported article again, to one channel
    result = run("articles", "share", "art-1", "--channel", "preview", "--actor", "alice", "--json")
    # Then a share is queued for the workers (an outbox event), recorded under the operator's name
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.stdout) == {"action": "share", "target": "article:art-1",
                                         "message": "article art-1 will be posted again to channel preview"}
    assert outbox_size(imported) == 1
    shown = json.loads(run("articles", "show", "art-1", "--json").stdout)
    assert [(s["kind"], s["actor"], s["channel"]) for s in shown["timeline"] if s["kind"] == "ops.share"] == [
        ("ops.share", "alice", "preview")]
    # And an unknown article or channel is refused cleanly, sharing nothing
    assert_clean_failure(run("articles", "share", "nope"))
    refused = run("articles", "share", "art-1", "--channel", "nowhere")
    assert_clean_failure(refused)
    assert "no channel named 'nowhere'" in refused.stderr and outbox_size(imported) == 1


def test_migrate_prepares_an_empty_database(home: Path) -> None:
    result = run("migrate")
    assert result.exit_code == 0, result.output + result.stderr
    assert (home / "var" / "syndication.db").is_file()
    assert outbox_size(home) == 0


# --- help --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    [], ["import"], ["render"], ["migrate"], ["run"], ["serve"],
    ["articles"], ["articles", "list"], ["articles", "show"], ["articles", "unpublish"],
])
def test_every_command_explains_itself(home: Path, command: list[str]) -> None:
    # When the operator asks any command for --help
    result = run(*command, "--help")
    # Then it prints usage and exits 0
    assert result.exit_code == 0, result.output + result.stderr
    assert "Usage" in result.output
