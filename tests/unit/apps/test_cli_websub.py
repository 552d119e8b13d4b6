"""Renders made by the CLI (import, render --all, unpublish) ping the hubs too."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import article_json
from tests.support.hub_standin import Hub
from tests.unit.apps.test_cli import SITE_TOML, home, run  # noqa: F401 - home is a fixture

BASE = "https://cli.test.example/feeds"


@pytest.fixture
def hub(home: Path) -> Iterator[Hub]:  # noqa: F811 - the fixture imported above
    """A hub stand-in, named in the site's [site] hubs."""
    h = Hub()
    toml = SITE_TOML.replace('timezone = "Europe/Berlin"', f'timezone = "Europe/Berlin"\nhubs = ["{h.url}"]')
    (home / "syndication.toml").write_text(toml, encoding="utf-8")
    yield h
    h.close()


def test_import_render_all_and_unpublish_each_ping_the_feeds_they_changed(home: Path, hub: Hub) -> None:  # noqa: F811
    # Given a backfill file of one article in section Politics
    (home / "a.json").write_text(json.dumps([article_json(1, tags=[])]), encoding="utf-8")
    # When it is imported
    assert run("import", str(home / "a.json")).exit_code == 0
    # Then the hub heard once of each feed file the import wrote
    feeds = ["all", "section/politics", "author/ada-reporter"]
    expected = sorted(f"{BASE}/{key}.{ext}" for key in feeds for ext in ("atom", "json", "rss"))
    assert sorted(hub.topics()) == expected
    # And a render --all that changes nothing pings nothing
    assert run("render", "--all").exit_code == 0
    assert len(hub.forms) == len(expected)
    # And an unpublish pings every feed it changed again
    assert run("articles", "unpublish", "art-1").exit_code == 0
    assert sorted(hub.topics()[len(expected):]) == expected
