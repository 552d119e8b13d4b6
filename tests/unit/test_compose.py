"""Composing a post: the template, mentions, hashtags, and fitting X's weighted length."""
from __future__ import annotations

from typing import Any

import pytest
from twitter_text import parse_tweet

from config.site import ChannelConfig, StaffMember
from syndication.articles import Article, parse_article
from syndication.channels.base import PostRules, social_handle
from syndication.channels.counting import mastodon_length
from syndication.channels.x import X_RULES
from syndication.compose import ComposedPost, compose_post, hashtag, template_for
from syndication.errors import ConfigError

URL = "https://news.example.org/2026/05/01/leaders-agree-climate-deal"
DEFAULT = "{{ title }} {{ url }} {{ mentions }} {{ hashtags }}"
STAFF = {"Ada Reporter": StaffMember(x="adareporter"), "Bruno Desk": StaffMember(x="brunodesk")}


def article(**fields: Any) -> Article:
    data: dict[str, Any] = {"id": "a1", "url": URL, "title": "Leaders agree climate deal",
                            "published_at": "2026-05-01T09:30:00Z"}
    data.update(fields)
    return parse_article(data)


def compose(a: Article, template: str = DEFAULT, **kwargs: Any) -> ComposedPost:
    kwargs.setdefault("staff", STAFF)
    kwargs.setdefault("mention_authors", True)
    kwargs.setdefault("rules", X_RULES)
    return compose_post(a, template=template, **kwargs)


def x_length(text: str) -> int:
    return parse_tweet(text).weightedLength


def assert_postable(post: ComposedPost, *mentions: str) -> None:
    """What X would check and what a reader would notice: it fits, the link works, the
    people are tagged."""
    assert post.skipped is None
    assert x_length(post.text) == post.weighted_length <= 280
    assert URL in post.text.split()  # the whole link, standing alone
    for handle in mentions:
        assert f"@{handle}" in post.text.split()
    post.text.encode("utf-8")  # no lone surrogates


def kept_title(post: ComposedPost) -> str:
    """The title part of a cut post: everything before the ellipsis."""
    assert "…" in post.text
    return post.text.split("…")[0]


# -- the template -------------------------------------------------------------------------------


def test_the_default_template_gives_title_link_mentions_and_hashtags() -> None:
    # Given an article by two staff members, tagged
    a = article(authors=[{"name": "Ada Reporter"}, {"name": "Bruno Desk"}], tags=["Climate", "COP 30"])
    # When it is composed with the default template
    post = compose(a)
    # Then the post reads as a person would write it
    assert post.text == f"Leaders agree climate deal {URL} @adareporter @brunodesk #Climate #COP30"
    assert post.mentions == ["adareporter", "brunodesk"]
    assert_postable(post, "adareporter", "brunodesk")


def test_the_summary_is_plain_text() -> None:
    a = article(summary="<p>Deal <strong>reached</strong> &amp; signed</p>")
    post = compose(a, "{{ title }}: {{ summary }} {{ url }}")
    assert post.text == f"Leaders agree climate deal: Deal reached & signed {URL}"


def test_all_variables_are_available() -> None:
    a = article(section="Climate", tags=["COP30"], authors=[{"name": "Ada Reporter"}])
    post = compose(a, "[{{ section }}] {{ title }} by {{ authors|join(', ') }} ({{ tags|join('/') }}) {{ url }}")
    assert post.text == f"[Climate] Leaders agree climate deal by Ada Reporter (COP30) {URL} @adareporter"


def test_a_template_without_the_link_still_gets_it() -> None:
    post = compose(article(), "{{ title }}")
    assert post.text == f"Leaders agree climate deal {URL}"


def test_empty_parts_leave_no_stray_spaces() -> None:
    post = compose(article(), DEFAULT)
    assert post.text == f"Leaders agree climate deal {URL}"


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(ConfigError, match="channels.x.template"):
        compose(article(), "{{ ''.__class__.__mro__ }} {{ url }}", template_name="channels.x.template")
    with pytest.raises(ConfigError):
        compose(article(), "{{ title.__class__.__mro__[1].__subclasses__() }}")


def test_a_broken_template_names_itself() -> None:
    with pytest.raises(ConfigError, match="channels.x.sections.sport"):
        compose(article(), "{{ title ", template_name="channels.x.sections.sport")


def test_a_misspelt_variable_is_a_config_error_not_a_blank() -> None:
    with pytest.raises(ConfigError, match="titel"):
        compose(article(), "{{ titel }} {{ url }}")


def test_the_template_is_plain_text_not_html() -> None:
    post = compose(article(title="Rock & Roll <live>"), "{{ title }} {{ url }}")
    assert post.text.startswith("Rock & Roll <live> ")


# -- per-section templates -------------------------------------------------------------------------


def test_a_section_override_matches_whatever_the_case() -> None:
    channel = ChannelConfig(template="default {{ url }}", sections={"sport": "⚽ {{ title }} {{ url }}",
                                                                     "Climate Change": "🌍 {{ url }}"})
    assert template_for(channel, "Sport") == "⚽ {{ title }} {{ url }}"
    assert template_for(channel, "climate-change") == "🌍 {{ url }}"
    assert template_for(channel, "Politics") == "default {{ url }}"
    assert template_for(channel, None) == "default {{ url }}"


# -- mentions ---------------------------------------------------------------------------------------


def test_mentions_come_from_the_article_or_the_staff_list_once_each() -> None:
    # Given one author with her own handle, one on the staff list under another case, and a duplicate
    a = article(authors=[{"name": "Carla Guest", "x": "@carlaguest"}, {"name": "ada reporter"},
                         {"name": "Ada Reporter", "x": "AdaReporter"}, {"name": "No Handle"}])
    post = compose(a)
    assert post.mentions == ["carlaguest", "adareporter"]
    assert post.text.count("@adareporter") + post.text.count("@AdaReporter") == 1


def test_no_mentions_when_the_site_turns_them_off() -> None:
    a = article(authors=[{"name": "Ada Reporter"}])
    post = compose(a, mention_authors=False)
    assert post.mentions == [] and "@" not in post.text


def test_mentions_are_added_when_the_template_leaves_them_out() -> None:
    post = compose(article(authors=[{"name": "Ada Reporter"}]), "{{ title }} {{ url }}")
    assert post.text == f"Leaders agree climate deal {URL} @adareporter"


# -- hashtags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "expected"), [
    ("Climate", "#Climate"),
    ("COP 30", "#COP30"),
    ("climate change", "#ClimateChange"),
    ("women's rights", "#WomensRights"),
    ("U.S. politics", "#USPolitics"),
    ("#already", "#already"),
    ("気候変動", "#気候変動"),
    ("Ação climática", "#AçãoClimática"),
    ("2026", None),
    ("!!!", None),
])
def test_tags_become_valid_hashtags(tag: str, expected: str | None) -> None:
    assert hashtag(tag) == expected


def test_tags_that_cannot_be_hashtags_are_left_out() -> None:
    post = compose(article(tags=["2026", "Climate", "climate", "?!"]), "{{ hashtags }} {{ url }}")
    assert post.text == f"#Climate {URL}"


# -- fitting in 280 ---------------------------------------------------------------------------------


def test_hashtags_are_dropped_from_the_end_before_the_title_is_cut() -> None:
    # Given a title that fits only with some of the hashtags
    title = "Leaders agree climate deal " + "after long talks " * 11
    tags = ["Climate", "COP30", "Diplomacy", "Energy", "Emissions"]
    post = compose(article(title=title.strip(), tags=tags, authors=[{"name": "Ada Reporter"}]))
    # Then the title is whole, the first hashtags stay and the last ones went
    assert_postable(post, "adareporter")
    assert post.text.startswith(title.strip() + " ")
    assert "#Climate" in post.text and "#Emissions" not in post.text
    assert "…" not in post.text


def test_a_very_long_english_title_is_cut_at_a_word_with_an_ellipsis() -> None:
    # Given a title far over the limit, with hashtags and two mentions
    words = "Leaders from nearly two hundred countries agree a landmark climate deal".split()
    title = " ".join(words * 12)
    post = compose(article(title=title, tags=["Climate", "COP30"],
                           authors=[{"name": "Ada Reporter"}, {"name": "Bruno Desk"}]))
    # Then it fits, keeps link and mentions, drops hashtags, and cuts after a whole word
    assert_postable(post, "adareporter", "brunodesk")
    assert "#" not in post.text
    kept = kept_title(post)
    assert title.startswith(kept) and kept.split()[-1] in words
    assert post.text == f"{kept}… {URL} @adareporter @brunodesk"
    assert post.weighted_length >= 270  # cut no more than needed


def test_a_single_enormous_word_is_cut_anywhere() -> None:
    post = compose(article(title="A" * 900))
    assert_postable(post)
    assert len(kept_title(post)) > 200


def test_a_cjk_title_counts_double_and_is_cut_between_characters() -> None:
    title = "気候変動に関する歴史的な合意が二週間の交渉の末に成立した" * 10
    post = compose(article(title=title, tags=["気候"], authors=[{"name": "Ada Reporter"}]))
    assert_postable(post, "adareporter")
    kept = kept_title(post)
    assert title.startswith(kept)
    assert x_length(kept) > 200


def test_mixed_cjk_and_english_fits() -> None:
    title = "COP30: 気候変動に関する歴史的な合意 agreed by leaders 二週間の交渉 " * 8
    post = compose(article(title=title.strip(), authors=[{"name": "Bruno Desk"}]))
    assert_postable(post, "brunodesk")
    assert title.startswith(kept_title(post))


EMOJI = [
    "👨\u200d👩\u200d👧\u200d👦",   # family: a ZWJ sequence
    "🇯🇵",                            # flag: a regional-indicator pair
    "👍🏽",                            # thumbs up with a skin tone
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland: tag characters
    "❤️",                             # heart with variation selector
    "1️⃣",                             # keycap
    "👩🏿\u200d🚀",                    # astronaut with skin tone
]


@pytest.mark.parametrize("offset", range(len(EMOJI)))
def test_an_emoji_heavy_title_is_never_cut_inside_an_emoji(offset: int) -> None:
    # Given a title made of whole emoji (rotated so each kind lands at the cut once)
    graphemes = (EMOJI[offset:] + EMOJI[:offset]) * 30
    title = "".join(graphemes)
    assert len(title) <= 1000 and x_length(title) > 280
    post = compose(article(title=title, authors=[{"name": "Ada Reporter"}]))
    # Then it fits and what is kept is a whole number of those emoji
    assert_postable(post, "adareporter")
    kept = kept_title(post)
    assert any(kept == "".join(graphemes[:n]) for n in range(1, len(graphemes))), "an emoji was split"


def test_letters_with_combining_marks_stay_whole() -> None:
    # Given letters built from a base and two combining marks (no precomposed form
    # exists; marks in canonical order, as X normalises to NFC)
    grapheme = "x\u0323\u0301"
    title = grapheme * 300
    post = compose(article(title=title))
    assert_postable(post)
    kept = kept_title(post)
    assert len(kept) % len(grapheme) == 0 and kept == grapheme * (len(kept) // len(grapheme))


def test_a_long_summary_is_cut_before_the_title() -> None:
    a = article(summary="<p>" + "The agreement sets new targets for emissions. " * 20 + "</p>")
    post = compose(a, "{{ title }}: {{ summary }} {{ url }}")
    assert_postable(post)
    assert post.text.startswith("Leaders agree climate deal: The agreement sets")
    assert "…" in post.text


def test_mentions_that_cannot_fit_skip_the_post_with_a_reason() -> None:
    # Given more authors with handles than X allows characters for
    authors = [{"name": f"Author {i}", "x": f"author_number{i:02d}"} for i in range(20)]
    post = compose(article(authors=authors))
    assert post.skipped is not None and "280" in post.skipped
    assert post.weighted_length > 280


# -- per-article overrides ---------------------------------------------------------------------------


def test_social_text_replaces_the_template_and_gets_the_link() -> None:
    a = article(social={"text": "Our team was there: the deal, explained"}, tags=["Climate"])
    post = compose(a)
    assert post.text == f"Our team was there: the deal, explained {URL}"


def test_social_text_is_never_run_as_a_template() -> None:
    a = article(social={"text": "Literally {{ ''.__class__ }} {{ title }}"})
    post = compose(a)
    assert post.text.startswith("Literally {{ ''.__class__ }} {{ title }} ")


def test_social_text_that_already_has_the_link_is_left_alone() -> None:
    a = article(social={"text": f"Read {URL} now"}, authors=[{"name": "Ada Reporter"}])
    post = compose(a)
    assert post.text == f"Read {URL} now @adareporter"


def test_a_too_long_social_text_is_cut_but_keeps_its_link() -> None:
    a = article(social={"text": f"Read {URL} " + "and more words " * 40})
    post = compose(a)
    assert_postable(post)
    assert post.text.endswith(f"… {URL}")


def test_social_skip_skips_the_post() -> None:
    post = compose(article(social={"skip": True}))
    assert post.skipped and "social.skip" in post.skipped
    assert post.text == ""


# -- other channels' rules ----------------------------------------------------------------------

MASTODON_LIKE = PostRules(length=mastodon_length, handle=social_handle("mastodon", r"[A-Za-z0-9_]+@[A-Za-z0-9.-]+"))


def test_mentions_use_the_handle_the_channel_s_rule_finds() -> None:
    # Given an author with handles on X and Mastodon, and a staff member with only an X handle
    a = article(authors=[{"name": "Nia", "social": {"x": "nia_x", "mastodon": "@nia@news.social"}},
                         {"name": "Ada Reporter"}])
    # When composed for a Mastodon-like channel
    post = compose(a, rules=MASTODON_LIKE, max_length=500)
    # Then the author is mentioned by her Mastodon handle; nobody by an X handle
    assert "@nia@news.social" in post.text.split()
    assert "@nia_x" not in post.text and "@adareporter" not in post.text


def test_length_is_the_channel_s_rule() -> None:
    # Given a title of 300 CJK characters: 600 on X's weighted count, 300 characters on Mastodon's
    a = article(title="東" * 300)
    # Then X cuts it, while a 500-character channel (a link counting 23) keeps it whole
    assert "…" in compose(a).text
    post = compose(a, rules=MASTODON_LIKE, max_length=500)
    assert "東" * 300 in post.text and post.weighted_length == 300 + 1 + 23
