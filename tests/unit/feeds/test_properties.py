"""Whatever text a CMS sends, either parse_article refuses it or every feed format is
well-formed, written exactly as lxml would write it."""
from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from syndication.articles import parse_article
from syndication.errors import ValidationError
from syndication.feeds import ALL, FeedSpec, render_formats
from tests.unit.feeds.factories import BASE, HUBS, T0, site, stored
from tests.unit.feeds.reading import aggregate, written_back, xml

# Every code point, lone surrogates and controls included: the CMS is not trusted.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=60)
GAZETTE = site(hubs=HUBS)
NOW = T0 + timedelta(days=1)

cms_articles = st.fixed_dictionaries(
    {
        "id": st.text(ANY_CHAR, min_size=1, max_size=30),
        "url": st.just(f"{BASE}/2026/05/story"),
        "title": ANY_TEXT,
        "published_at": st.just(T0.isoformat()),
    },
    optional={
        "summary": ANY_TEXT,
        "content_html": st.one_of(ANY_TEXT, ANY_TEXT.map(lambda t: f"<p>{t}</p><script>{t}</script>")),
        "section": ANY_TEXT,
        "tags": st.lists(ANY_TEXT, max_size=4),
        "authors": st.lists(st.fixed_dictionaries({"name": ANY_TEXT}, optional={
            "email": st.sampled_from(["ada@news.example.org", "not an email"])}), max_size=3),
        "language": st.sampled_from(["en", "ar", "ja", "pt-BR", "x!"]),
        "image": st.fixed_dictionaries({"url": st.just(f"{BASE}/i/1.png")},
                                       optional={"length": st.integers(0, 2**40)}),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=cms_articles)
def test_any_text_is_refused_or_renders_well_formed_in_every_format(raw):
    # Given whatever a CMS sent
    try:
        item = parse_article(raw, tz=GAZETTE.tz)
    except ValidationError:
        event("refused")
        return  # Then either it is refused with field errors...
    event("rendered")
    # When it is rendered in every format, in a feed named after its section
    spec = FeedSpec("section", item.section_slug, item.section) if item.section else ALL
    rendered = render_formats(spec, [stored(item)], GAZETTE, NOW)
    # ...or lxml parses the XML, json.loads the JSON, and feedparser has no complaint
    for name in ("rss", "atom"):
        xml(rendered[name])
        # (items are written as text: lxml writing the parsed document back changes no byte)
        assert written_back(rendered[name]) == rendered[name]
        parsed = aggregate(rendered[name])
        assert parsed.bozo == 0, (name, parsed.get("bozo_exception"))
        assert len(parsed.entries) == 1
    feed = json.loads(rendered["json"].decode("utf-8"))
    assert [i["id"] for i in feed["items"]] == [parsed.entries[0].id]
    # And rendering again gives the same bytes
    assert render_formats(spec, [stored(item)], GAZETTE, NOW) == rendered
