"""RSS 2.0 and Atom 1.0 as readers see them: parsed back with lxml and feedparser."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from syndication.articles import Article, StoredArticle
from syndication.text import html_to_text
from syndication.feeds import ALL, FORMATS, FeedSpec, entry_id, render_atom, render_rss
from tests.unit.feeds.factories import (
    BASE,
    HUBS,
    T0,
    article,
    corpus,
    entries,
    newest_first,
    site,
    stored,
)
from tests.unit.feeds.reading import NS, XML_LANG, aggregate, texts, xml

NOW = T0 + timedelta(days=3)  # the "wall clock"; must never appear in the output
SPORT = FeedSpec("section", "sport", "Sport")


def atom_links(entry, rel):
    return [link for link in entry.findall("atom:link", NS) if link.get("rel", "alternate") == rel]


# --- RSS 2.0 ---------------------------------------------------------------------------


def test_rss_channel_has_the_elements_rss_2_requires():
    # Given a site and three published articles
    gazette, items = site(), entries(3)
    # When the "all" feed is rendered as RSS
    root = xml(render_rss(ALL, items, gazette, NOW))
    # Then it is RSS 2.0 with channel title, link and description
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel.findtext("title") == gazette.title
    assert channel.findtext("link") == gazette.home
    assert channel.findtext("description") == gazette.description
    # And it names its own URL, as the RSS best practices ask
    (self_link,) = channel.xpath("atom:link[@rel='self']", namespaces=NS)
    assert self_link.get("href") == f"{gazette.feeds_base}/all.rss"
    assert self_link.get("type") == FORMATS["rss"].media_type
    # And language, logo and copyright come from the site
    assert channel.findtext("language") == "en"
    assert channel.findtext("image/url") == str(gazette.logo)
    assert channel.findtext("image/link") == channel.findtext("link")
    assert channel.findtext("image/title") == channel.findtext("title")
    assert channel.findtext("copyright") == gazette.copyright


def test_rss_items_keep_the_newest_first_order_and_carry_a_stable_guid():
    # Given three articles handed over newest first
    gazette, items = site(), entries(3)
    # When rendered as RSS
    channel = xml(render_rss(ALL, items, gazette, NOW)).find("channel")
    # Then the items are in the same order, each with title, link and a non-permalink guid
    rendered = channel.findall("item")
    assert [i.findtext("title") for i in rendered] == [s.article.title for s in items]
    assert [i.findtext("link") for i in rendered] == [s.article.url for s in items]
    for item, entry in zip(rendered, items):
        guid = item.find("guid")
        assert guid.get("isPermaLink") == "false"
        assert guid.text == entry_id(gazette, entry.article.id)
        assert guid.text.startswith("tag:news.example.org,")
    # And pubDate is an RFC 822 date equal to published_at
    dates = [parsedate_to_datetime(i.findtext("pubDate")) for i in rendered]
    assert dates == [s.article.published_at for s in items]


def test_rss_item_carries_summary_content_and_categories():
    # Given an article with a summary, a body, a section and tags
    item = article(1, section="Sport", tags=["Football", "sport", "Cup"])
    # When rendered
    parsed = aggregate(render_rss(SPORT, [stored(item)], site(), NOW))
    (entry,) = parsed.entries
    # Then the summary is the description and the body is content:encoded
    assert "What happened in story 1." in entry.summary
    assert "The whole of story 1." in entry.content[0].value
    # And the section and tags are categories, without case-insensitive repeats
    assert [t.term for t in entry.tags] == ["Sport", "Football", "Cup"]
    assert parsed.bozo == 0


def test_rss_author_is_email_and_name_for_a_single_byline_with_an_email():
    # Given an article by one reporter whose email is known
    item = article(1, authors=[{"name": "Ada Reporter", "email": "ada@news.example.org"}])
    (reporter,) = item.authors
    # When rendered as RSS
    data = render_rss(ALL, [stored(item)], site(), NOW)
    # Then there is one <author> and no dc:creator
    assert len(texts(xml(data), "//item/author")) == 1
    assert texts(xml(data), "//item/dc:creator") == []
    # And an aggregator reads both the email and the name from it
    (entry,) = aggregate(data).entries
    assert (entry.author_detail.email, entry.author_detail.name) == (reporter.email, reporter.name)


def test_rss_uses_dc_creator_when_the_author_has_no_email():
    # Given an article whose byline has no email address
    item = article(1, authors=[{"name": "Bruno Desk"}])
    # When rendered as RSS
    root = xml(render_rss(ALL, [stored(item)], site(), NOW))
    # Then the name is a dc:creator and no <author> (which must be an email) is written
    assert texts(root, "//item/dc:creator") == ["Bruno Desk"]
    assert texts(root, "//item/author") == []


def test_rss_puts_every_name_of_a_shared_byline_in_dc_creator():
    # Given an article by two people, one with an email
    item = article(1, authors=[{"name": "Bruno Desk"}, {"name": "Cleo Wire", "email": "cleo@x.org"}])
    # When rendered as RSS
    root = xml(render_rss(ALL, [stored(item)], site(), NOW))
    # Then both are dc:creator and no item has both <author> and dc:creator
    assert texts(root, "//item/dc:creator") == ["Bruno Desk", "Cleo Wire"]
    assert texts(root, "//item/author") == []


def test_rss_enclosure_has_url_length_and_type():
    # Given one article with a sized PNG and one with an image of unknown size and type
    sized = article(1, image={"url": f"{BASE}/img/1.png", "length": 52311})
    unknown = article(2, image={"url": f"{BASE}/img/2"})
    # When rendered as RSS
    root = xml(render_rss(ALL, newest_first([stored(sized), stored(unknown)]), site(), NOW))
    first, second = root.findall("channel/item/enclosure")
    # Then RSS's three required attributes are present; unknown length is 0, type a default
    assert (first.get("url"), first.get("length"), first.get("type")) == (
        f"{BASE}/img/1.png", "52311", "image/png")
    assert (second.get("url"), second.get("length"), second.get("type")) == (
        f"{BASE}/img/2", "0", "image/jpeg")


def test_rss_announces_each_websub_hub():
    # Given a site that pings two WebSub hubs
    gazette = site(hubs=HUBS)
    # When rendered as RSS
    channel = xml(render_rss(ALL, entries(1), gazette, NOW)).find("channel")
    # Then each hub is an atom:link rel="hub", beside the self link
    hubs = channel.xpath("atom:link[@rel='hub']/@href", namespaces=NS)
    assert hubs == [str(h) for h in gazette.hubs]
    assert channel.xpath("atom:link[@rel='self']", namespaces=NS)


def test_rss_has_no_hub_links_when_none_are_configured():
    channel = xml(render_rss(ALL, entries(1), site(), NOW)).find("channel")
    assert channel.xpath("atom:link[@rel='hub']", namespaces=NS) == []


# --- Atom 1.0 --------------------------------------------------------------------------


def test_atom_feed_has_the_elements_rfc_4287_requires():
    # Given a section feed with three articles
    gazette, items = site(hubs=HUBS), entries(3)
    # When rendered as Atom
    data = render_atom(SPORT, items, gazette, NOW)
    root = xml(data)
    # Then feed id, title and updated are present
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    assert root.findtext("atom:id", namespaces=NS).startswith("tag:news.example.org,")
    assert root.findtext("atom:title", namespaces=NS) == SPORT.title(gazette.title)
    assert root.findtext("atom:updated", namespaces=NS)
    # And the self link, the home page and each hub are linked
    (self_link,) = atom_links(root, "self")
    assert self_link.get("href") == f"{gazette.feeds_base}/section/sport.atom"
    assert self_link.get("type") == "application/atom+xml"
    assert [l.get("href") for l in atom_links(root, "alternate")] == [gazette.home]
    assert [l.get("href") for l in atom_links(root, "hub")] == [str(h) for h in gazette.hubs]
    # And language, logo, rights and an author (for entries without one) come from the site
    assert root.get(XML_LANG) == "en"
    assert root.findtext("atom:logo", namespaces=NS) == str(gazette.logo)
    assert root.findtext("atom:rights", namespaces=NS) == gazette.copyright
    assert root.findtext("atom:author/atom:name", namespaces=NS) == gazette.title
    assert aggregate(data).bozo == 0


def test_atom_entries_are_newest_first_with_id_title_updated_and_published():
    # Given three articles handed over newest first
    gazette, items = site(), entries(3)
    # When rendered as Atom
    parsed = aggregate(render_atom(ALL, items, gazette, NOW))
    # Then the entries keep that order and carry the stable id and both dates
    assert [e.title for e in parsed.entries] == [s.article.title for s in items]
    assert [e.id for e in parsed.entries] == [entry_id(gazette, s.article.id) for s in items]
    for entry, item in zip(parsed.entries, items):
        assert entry.link == item.article.url
        assert datetime(*entry.updated_parsed[:6], tzinfo=timezone.utc) == item.updated
        assert datetime(*entry.published_parsed[:6], tzinfo=timezone.utc) == item.article.published_at
        assert entry.content[0].type == "text/html"
        assert entry.summary_detail.type == "text/html"
    assert parsed.bozo == 0


def test_atom_enclosure_keeps_rel_type_and_length():
    # Given an article with a sized image (feedgen 1.0.0 drops these: python-feedgen#135)
    item = article(1, image={"url": f"{BASE}/img/1.webp", "length": 52311})
    # When rendered as Atom
    data = render_atom(ALL, [stored(item)], site(), NOW)
    (entry,) = xml(data).findall("atom:entry", NS)
    # Then the enclosure link has rel, type and length, and only the page is "alternate"
    (enclosure,) = atom_links(entry, "enclosure")
    assert enclosure.get("href") == f"{BASE}/img/1.webp"
    assert enclosure.get("type") == "image/webp"
    assert enclosure.get("length") == "52311"
    (alternate,) = atom_links(entry, "alternate")
    assert alternate.get("href") == item.url and alternate.get("type") == "text/html"
    # And an aggregator sees it as an enclosure
    (seen,) = aggregate(data).entries[0].enclosures
    assert (seen.href, seen.type, seen.length) == (f"{BASE}/img/1.webp", "image/webp", "52311")


def test_atom_enclosure_of_unknown_size_has_no_length():
    item = article(1, image={"url": f"{BASE}/img/1.gif"})
    (entry,) = xml(render_atom(ALL, [stored(item)], site(), NOW)).findall("atom:entry", NS)
    (enclosure,) = atom_links(entry, "enclosure")
    assert enclosure.get("length") is None and enclosure.get("type") == "image/gif"


def test_atom_authors_have_name_email_and_uri():
    # Given an article by two people, one with an email and a page
    item = article(1, authors=[{"name": "Bruno Desk"},
                               {"name": "Cleo Wire", "email": "cleo@x.org", "url": "https://x.org/cleo"}])
    # When rendered as Atom
    (entry,) = xml(render_atom(ALL, [stored(item)], site(), NOW)).findall("atom:entry", NS)
    # Then both are authors, with what is known about each
    people = [(a.findtext("atom:name", namespaces=NS), a.findtext("atom:email", namespaces=NS),
               a.findtext("atom:uri", namespaces=NS)) for a in entry.findall("atom:author", NS)]
    assert people == [("Bruno Desk", None, None), ("Cleo Wire", "cleo@x.org", "https://x.org/cleo")]


def test_atom_entry_in_another_language_says_so():
    item = article(1, language="ar")
    (entry,) = xml(render_atom(ALL, [stored(item)], site(), NOW)).findall("atom:entry", NS)
    assert entry.get(XML_LANG) == "ar"


# --- both formats -----------------------------------------------------------------------


def test_feed_date_is_the_newest_entry_update_not_the_clock():
    # Given entries, the newest of which was edited after it was published
    edited = stored(article(2, updated_at=(T0 + timedelta(hours=5)).isoformat()), revision=2)
    items = newest_first([stored(article(1)), edited])
    # When rendered at some later wall-clock time
    rss = xml(render_rss(ALL, items, site(), NOW))
    atom = xml(render_atom(ALL, items, site(), NOW))
    # Then lastBuildDate and feed updated are that edit time
    assert parsedate_to_datetime(rss.findtext("channel/lastBuildDate")) == edited.updated
    assert datetime.fromisoformat(atom.findtext("atom:updated", namespaces=NS)) == edited.updated


def test_an_empty_feed_is_dated_when_it_was_generated():
    # Given no entries (all withdrawn) and a naive generation time, read as UTC
    generated = datetime(2026, 5, 3, 12, 0)
    # When rendered
    rss = render_rss(ALL, [], site(), generated)
    atom = render_atom(ALL, [], site(), generated)
    # Then both are valid, empty, and dated at generated_at
    assert aggregate(rss).bozo == 0 and aggregate(atom).bozo == 0
    assert xml(rss).findall("channel/item") == []
    expected = generated.replace(tzinfo=timezone.utc)
    assert parsedate_to_datetime(xml(rss).findtext("channel/lastBuildDate")) == expected
    assert datetime.fromisoformat(xml(atom).findtext("atom:updated", namespaces=NS)) == expected


def test_ids_do_not_change_when_an_article_is_edited():
    # Given an article as first published, and the same article edited: new title,
    # new URL, new section, a later revision
    first = stored(article(1))
    edited = stored(article(1, title="Story number 1, corrected", section="World",
                            url=f"{BASE}/2026/05/story-1-corrected",
                            updated_at=(T0 + timedelta(hours=2)).isoformat()),
                    revision=3, modified_at=T0 + timedelta(hours=2))
    # When each version is rendered in both formats
    before = [aggregate(render(ALL, [first], site(), NOW)).entries[0] for render in (render_rss, render_atom)]
    after = [aggregate(render(ALL, [edited], site(), NOW)).entries[0] for render in (render_rss, render_atom)]
    # Then the guid and the Atom id are the same before and after, and the same as each other
    assert {e.id for e in before} == {e.id for e in after} == {entry_id(site(), "story-1")}
    # And only the Atom updated date moved
    assert after[1].updated_parsed > before[1].updated_parsed


def test_same_input_gives_identical_bytes():
    # Given the same entries and site
    items, later = entries(5), NOW + timedelta(hours=1)
    for render in (render_rss, render_atom):
        # When rendered twice, at different wall-clock times
        first = render(ALL, items, site(hubs=HUBS), NOW)
        second = render(ALL, items, site(hubs=HUBS), later)
        # Then the bytes do not differ
        assert first == second


def test_rss_rendered_from_many_threads_is_identical():
    # Given the same feed rendered from eight threads at once (feedgen switches the
    # process locale while it formats RSS dates)
    items, results = entries(20), []

    def render() -> None:
        for _ in range(5):
            results.append(render_rss(ALL, items, site(), NOW))

    threads = [threading.Thread(target=render) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every rendering is the same, with English day names
    assert len(set(results)) == 1
    for date in texts(xml(results[0]), "//pubDate"):
        parsedate_to_datetime(date)


def test_output_is_utf8_with_an_xml_declaration():
    for data in (render_rss(ALL, entries(1), site(), NOW), render_atom(ALL, entries(1), site(), NOW)):
        assert data.startswith(b"<?xml")
        assert xml(data).getroottree().docinfo.encoding.upper() == "UTF-8"


def test_text_with_characters_xml_forbids_is_scrubbed_not_fatal():
    # Given an article that bypassed parse_article and holds control characters and a
    # lone surrogate
    good = article(1)
    bad = Article.model_construct(**{**dict(good), "title": "Bad\x00 title\ufffe", "summary": "x\ud800y",
                                     "content_html": None})
    items = [StoredArticle(bad, 1, "published", "api", T0, T0)]
    # When rendered in both formats
    for render in (render_rss, render_atom):
        data = render(ALL, items, site(), NOW)
        # Then the document is well-formed and the forbidden characters are gone
        parsed = aggregate(data)
        assert parsed.bozo == 0
        assert parsed.entries[0].title == "Bad title"


def test_awkward_corpus_is_well_formed_for_lxml_and_feedparser():
    # Given CJK, Arabic, emoji, hostile HTML, a 500 KB body, a naive date and enclosures
    items, gazette = corpus(), site(hubs=HUBS)
    for render in (render_rss, render_atom):
        # When rendered
        data = render(ALL, items, gazette, NOW)
        # Then lxml parses it, feedparser has no complaint, and every entry is there
        xml(data)
        parsed = aggregate(data)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        # (RSS titles lose their tags: readers render them as HTML; Atom's are text)
        expected = [html_to_text(s.article.title) if render is render_rss else s.article.title for s in items]
        assert [e.title for e in parsed.entries] == expected
    # And the 500 KB body arrives whole in both
    (long_read,) = [s.article for s in items if len(s.article.content_html or "") > 100_000]
    assert len(long_read.content_html.encode()) > 500_000
    rss = xml(render_rss(ALL, items, gazette, NOW))
    atom = xml(render_atom(ALL, items, gazette, NOW))
    assert long_read.content_html in texts(rss, "//item/content:encoded")
    assert long_read.content_html in texts(atom, "//atom:entry/atom:content")


def test_hostile_html_reaches_the_feed_only_as_cleaned_text():
    # Given an article whose HTML carried scripts, handlers and javascript: links
    (item,) = [s for s in corpus() if s.article.id == "story-4"]
    root = xml(render_atom(ALL, [item], site(), NOW))
    # When the escaped HTML in content is read back
    html = root.findtext("atom:entry/atom:content", namespaces=NS)
    # Then none of it survived parse_article's cleaning
    for needle in ("<script", "onclick", "javascript:", "<iframe", "onerror", "<style"):
        assert needle not in html


def test_naive_dates_are_read_in_the_site_time_zone():
    # Given an article whose CMS sent a naive published_at (Europe/London, BST in April)
    (item,) = [s for s in corpus() if s.article.id == "story-6"]
    # When rendered as Atom
    entry = aggregate(render_atom(ALL, [item], site(), NOW)).entries[0]
    # Then the published date is 08:00 London, 07:00 UTC
    assert datetime(*entry.published_parsed[:6], tzinfo=timezone.utc) == datetime(
        2026, 4, 20, 7, 0, tzinfo=timezone.utc)


def test_rss_titles_carry_no_tags_since_readers_render_them_as_html():
    # Given articles whose titles hold markup, a script and characters HTML escapes
    titled = [stored(article(1, title='<b>Budget</b> passes <img src=x onerror="steal()">')),
              stored(article(2, title="Q&A: is 3 < 4? <script>alert(1)</script>Yes"))]
    # When rendered as RSS
    data = render_rss(ALL, newest_first(titled), site(), NOW)
    root = xml(data)
    # Then the feed parses, and each title is the text alone, with no tag for a reader to run
    titles = [i.findtext("title") for i in root.iter("item")]
    assert titles == ["Budget passes", "Q&A: is 3 < 4? Yes"]
    assert not aggregate(data).bozo
    assert [e.title for e in aggregate(data).entries] == titles
