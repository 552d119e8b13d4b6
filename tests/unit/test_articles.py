"""A CMS sends article JSON: bad input is refused field by field, good input comes out clean."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import lxml.html
import pytest

from syndication.articles import parse_article
from syndication.errors import ValidationError
from tests.conftest import article_json, make_site

BERLIN = make_site().site.tz
# Every character XML 1.0 forbids that a CMS has been seen to send (tests below add each one).
FORBIDDEN = "\x00\x01\x08\x0b\x0c\x0e\x1f\ufffe\uffff\ud800"


def refused_fields(data: Any) -> dict[str, str]:
    """Parse, expect a refusal, and return {field: reason}."""
    with pytest.raises(ValidationError) as caught:
        parse_article(data, tz=BERLIN)
    assert caught.value.errors, "a refusal must say what was wrong"
    return {e.field: e.reason for e in caught.value.errors}


def without(key: str) -> dict[str, object]:
    data = article_json(1)
    del data[key]
    return data


# --- Refusals -------------------------------------------------------------------------

@pytest.mark.parametrize(("story", "payload", "field"), [
    ("the title is missing", without("title"), "title"),
    ("the title is blank", article_json(1, title="   "), "title"),
    ("the title is only control characters", article_json(1, title="\x00\x07"), "title"),
    ("the id is longer than 200 characters", article_json(1, id="x" * 201), "id"),
    ("the id is empty", article_json(1, id=""), "id"),
    ("the id holds a newline (a fake log line)", article_json(1, id="a1\n2026-11-30 ERROR forged"), "id"),
    ("the id holds a carriage return", article_json(1, id="a1\rforged"), "id"),
    ("the id holds a NUL", article_json(1, id="a1\x00"), "id"),
    ("the id holds U+2028 (a line separator)", article_json(1, id="a1\u2028forged"), "id"),
    ("the url is ftp:", article_json(1, url="ftp://news.test.example/a/1"), "url"),
    ("the url is javascript:", article_json(1, url="javascript:alert(1)"), "url"),
    ("the url is relative", article_json(1, url="/a/1"), "url"),
    ("the url has no host", article_json(1, url="https:///a/1"), "url"),
    ("published_at is a word", article_json(1, published_at="yesterday"), "published_at"),
    ("published_at is a number", article_json(1, published_at=1764489600), "published_at"),
    ("published_at is missing", without("published_at"), "published_at"),
    ("an author's email is not an address",
     article_json(1, authors=[{"name": "Ada", "email": "ada-at-example"}]), "authors.0.email"),
    ("an author's X handle is too long and has spaces",
     article_json(1, authors=[{"name": "Ada", "x": "ada reporter the great"}]), "authors.0.x"),
    ("the image url is not http(s)",
     article_json(1, image={"url": "ftp://img.test.example/a.jpg"}), "image.url"),
    ("the image type is not a MIME type",
     article_json(1, image={"url": "https://img.test.example/a.jpg", "type": "jpeg"}), "image.type"),
    ("the image length is negative",
     article_json(1, image={"url": "https://img.test.example/a.jpg", "length": -1}), "image.length"),
    ("an unknown field is sent", article_json(1, colour="red"), "colour"),
    ("tags are numbers", article_json(1, tags=[1, 2]), "tags.0"),
    ("a tag is null", article_json(1, tags=["Budget", None]), "tags.1"),
])
def test_a_bad_article_is_refused_naming_the_field(story: str, payload: dict[str, object], field: str) -> None:
    # Given a CMS payload where {story}
    # When it is parsed
    fields = refused_fields(payload)
    # Then the refusal names that field, with a reason a person can act on
    assert field in fields, f"{story}: refusal named {fields}"
    assert fields[field].strip()


def test_every_bad_field_is_reported_at_once() -> None:
    # Given an article with three independent mistakes
    payload = article_json(1, url="ftp://x.example/", published_at="yesterday", id="")
    # When it is parsed
    fields = refused_fields(payload)
    # Then all three are reported together, so the CMS can fix them in one go
    assert {"url", "published_at", "id"} <= set(fields)


@pytest.mark.parametrize("payload", [[article_json(1)], "an article", 42, None, True])
def test_input_that_is_not_a_json_object_is_refused(payload: object) -> None:
    # Given something that is not a JSON object (a list, a string, a number, null)
    # When it is parsed, then it is refused as a whole, not with a crash
    assert set(refused_fields(payload)) == {"(article)"}


def test_the_refusal_remembers_which_item_of_a_batch_it_was() -> None:
    # Given the third article of a batch is bad
    # When it is parsed with its index
    with pytest.raises(ValidationError) as caught:
        parse_article(article_json(1, url="/relative"), index=2)
    # Then the error says so, and renders as JSON the API can return
    assert caught.value.index == 2
    assert {"field": "url", "reason": "must be an absolute http(s) URL"} in caught.value.as_json()


@pytest.mark.parametrize(("field", "limit"), [("summary", 20_000), ("title", 1000), ("id", 200), ("section", 200)])
def test_a_length_counts_every_character_sent_whitespace_too(field: str, limit: int) -> None:
    # Given a value one character over the documented maxLength, all but one of them spaces
    # (schemathesis found such a summary taken: the spaces were stripped before counting)
    too_long = "x" + " " * limit
    # Then it is refused as too long, naming the field, as /openapi.json says
    with pytest.raises(ValidationError) as refused:
        parse_article(article_json(1, **{field: too_long}))
    assert [(e["field"], "at most" in e["reason"]) for e in refused.value.as_json()] == [(field, True)]
    # And within the limit, the surrounding whitespace is stripped as before
    assert getattr(parse_article(article_json(1, **{field: "  kept  "})), field) == "kept"


# --- Dates ---------------------------------------------------------------------------

@pytest.mark.parametrize(("local", "utc"), [
    ("2026-07-01T10:00:00", datetime(2026, 7, 1, 8, 0, tzinfo=timezone.utc)),    # CEST, UTC+2
    ("2026-01-15T10:00:00", datetime(2026, 1, 15, 9, 0, tzinfo=timezone.utc)),   # CET, UTC+1
])
def test_a_naive_date_is_read_in_the_sites_zone_and_stored_in_utc(local: str, utc: datetime) -> None:
    # Given a site in Europe/Berlin and a CMS that sends dates without an offset
    # When an article is parsed
    article = parse_article(article_json(1, published_at=local, updated_at=local), tz=BERLIN)
    # Then the wall-clock time is Berlin's, and what we keep is the same instant in UTC
    assert article.published_at == utc
    assert article.published_at.utcoffset().total_seconds() == 0
    assert article.updated_at == utc


def test_a_date_with_an_offset_keeps_its_instant() -> None:
    # Given a date that carries its own offset
    article = parse_article(article_json(1, published_at="2026-05-01T09:30:00+05:30"), tz=BERLIN)
    # Then the site's zone does not override it
    assert article.published_at == datetime(2026, 5, 1, 4, 0, tzinfo=timezone.utc)


# --- Control characters --------------------------------------------------------------

def test_characters_xml_forbids_are_stripped_from_every_string_field() -> None:
    # Given a CMS that lets control characters, U+FFFE/U+FFFF and a lone surrogate
    # into every text field but the id (refused instead, above)
    def dirty(text: str) -> str:
        return f"{text[:1]}{FORBIDDEN}{text[1:]}"

    payload = article_json(
        1,
        url=dirty("https://news.test.example/a/1"),
        title=dirty("Budget passes"),
        summary=dirty("The vote ended"),
        content_html=dirty("<p>Body</p>"),
        section=dirty("Politics"),
        tags=[dirty("Budget")],
        language=dirty("en"),
        source=dirty("Wire"),
        authors=[{"name": dirty("Ada Reporter"), "email": dirty("ada@news.test.example"),
                  "url": dirty("https://news.test.example/ada"), "x": dirty("adareporter")}],
        image={"url": dirty("https://img.test.example/a.jpg"), "type": dirty("image/jpeg"),
               "alt": dirty("Council chamber")},
        social={"text": dirty("Read this")},
    )
    # When it is parsed
    article = parse_article(payload, tz=BERLIN)
    # Then none of those characters survives anywhere, and the text around them does
    strings = list(_strings(article.model_dump(mode="json")))
    assert strings
    for value in strings:
        assert not set(value) & set(FORBIDDEN), f"forbidden character left in {value!r}"
        value.encode("utf-8")  # a lone surrogate would raise here
    assert (article.title, article.section) == ("Budget passes", "Politics")
    assert article.summary == "The vote ended"
    assert article.tags == ["Budget"]
    assert article.authors[0].name == "Ada Reporter"
    assert article.authors[0].email == "ada@news.test.example"
    assert article.authors[0].x == "adareporter"
    assert article.image is not None and article.image.alt == "Council chamber"
    assert article.social is not None and article.social.text == "Read this"


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_tab_newline_and_carriage_return_are_kept() -> None:
    # Given plain text with the three control characters XML allows
    article = parse_article(article_json(1, title="Budget\tvote\r\nnight", source="Wire\ndesk"), tz=BERLIN)
    # Then they survive: they are whitespace, not corruption
    assert article.title == "Budget\tvote\r\nnight"
    assert article.source == "Wire\ndesk"


# --- HTML ----------------------------------------------------------------------------

HOSTILE_HTML = """
<p onclick="steal()" style="color:red">Intro <b onmouseover="steal()">bold</b>
  <a href="javascript:alert(1)">js link</a>
  <a href="JaVaScRiPt:alert(2)">mixed case</a>
  <a href="  javascript:alert(3)">leading space</a>
  <a href="/politics/explainer">explainer</a>
  <a href="related">related</a>
  <a href="https://elsewhere.example/x?a=1&amp;b=2">elsewhere</a>
  <img src="../img/chart.png" onerror="steal()" alt="chart">
</p>
<script>alert("script")</script>
<iframe src="https://evil.example/frame"></iframe>
<style>p { display: none }</style>
<svg onload="steal()"><circle r="1"/></svg>
<blockquote cite="/quotes/1">quoted</blockquote>
<form action="https://evil.example/"><input name="password"></form>
"""
ARTICLE_URL = "https://news.test.example/politics/2026/budget"


@pytest.fixture
def cleaned() -> lxml.html.HtmlElement:
    # Given an article body that tries every usual trick, and a summary that tries one
    article = parse_article(article_json(1, url=ARTICLE_URL, content_html=HOSTILE_HTML,
                                         summary='<i onclick="x()">Short</i><script>bad()</script>'),
                            tz=BERLIN)
    assert article.content_html and article.summary
    # (the summary is cleaned the same way)
    summary = lxml.html.fragment_fromstring(article.summary, create_parent="div")
    assert not summary.xpath("//script | //@onclick")
    assert summary.text_content() == "Short"
    # When a reader's browser parses the cleaned body
    return lxml.html.fragment_fromstring(article.content_html, create_parent="div")


def test_scripts_iframes_styles_and_forms_are_removed(cleaned: lxml.html.HtmlElement) -> None:
    # Then no element that runs code, embeds pages or restyles the page is left
    assert not cleaned.xpath("//script | //iframe | //style | //svg | //form | //input")
    # And the text of those elements is gone too, not shown as words
    text = cleaned.text_content()
    assert "alert" not in text and "display" not in text


def test_event_handlers_and_style_attributes_are_removed(cleaned: lxml.html.HtmlElement) -> None:
    # Then no element carries an on* handler or inline style
    for element in cleaned.iter():
        for name in element.attrib:
            assert not name.lower().startswith("on"), f"{element.tag} kept {name}"
            assert name.lower() != "style", f"{element.tag} kept style"


def test_javascript_links_are_removed(cleaned: lxml.html.HtmlElement) -> None:
    # Then no link or source, however disguised, points at javascript:
    urls = cleaned.xpath("//@href | //@src | //@cite")
    assert urls
    assert not [u for u in urls if "javascript" in u.lower().replace(" ", "")]
    # And the link text is still there for the reader
    assert "js link" in cleaned.text_content()


def test_relative_links_become_absolute_against_the_article_url(cleaned: lxml.html.HtmlElement) -> None:
    # Then every remaining URL is absolute, resolved the way a browser on the article page would
    hrefs = {a.text_content(): a.get("href") for a in cleaned.xpath("//a[@href]")}
    assert hrefs["explainer"] == "https://news.test.example/politics/explainer"
    assert hrefs["related"] == "https://news.test.example/politics/2026/related"
    assert hrefs["elsewhere"] == "https://elsewhere.example/x?a=1&b=2"
    assert cleaned.xpath("//img/@src") == ["https://news.test.example/politics/img/chart.png"]
    assert cleaned.xpath("//blockquote/@cite") == ["https://news.test.example/quotes/1"]
    for url in cleaned.xpath("//@href | //@src | //@cite"):
        assert url.startswith(("https://", "http://")), url


def test_harmless_formatting_survives(cleaned: lxml.html.HtmlElement) -> None:
    # Then the ordinary markup a newsroom uses is kept
    assert cleaned.xpath("//p/b")[0].text_content() == "bold"
    assert cleaned.xpath("//img/@alt") == ["chart"]
    assert cleaned.xpath("//blockquote")[0].text_content() == "quoted"


@pytest.mark.parametrize(("sent", "kept"), [
    ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),  # a leap second
    ("2026-05-01t09:30:00.1234567z", datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=timezone.utc)),
])
def test_every_rfc_3339_date_time_is_taken(sent: str, kept: datetime) -> None:
    assert parse_article(article_json(1, published_at=sent)).published_at == kept


@pytest.mark.parametrize("sent", ["2026-05-01", "20260501T093000Z", "2026-05-01T09:30Z", "0999-12-31T23:00:00-05:00",
                                  "9999-12-31T23:00:00-05:00"])
def test_dates_that_are_not_rfc_3339_or_out_of_range_are_refused(sent: str) -> None:
    assert "published_at" in refused_fields(article_json(1, published_at=sent))
