"""The fragment cache: bounded, least recently used out first, and never changing a byte."""
from __future__ import annotations

from datetime import timedelta

from syndication.feeds import ALL, FragmentCache, render_atom, render_formats, render_json, render_rss
from syndication.feeds.fragments import Frame
from tests.unit.feeds.factories import HUBS, T0, article, corpus, entries, newest_first, site, stored

NOW = T0 + timedelta(days=3)


def test_a_frame_joins_its_items_between_head_and_tail():
    frame = Frame(b"[", b"]\n", b",")
    assert frame.join([b"1", b"2"]) == b"[1,2]\n"
    assert frame.join([]) == b"[]\n"


def cost_of_ten_bytes() -> int:
    """What one 10-byte fragment counts for in a cache's size (bookkeeping included)."""
    probe = FragmentCache()
    probe.get_or_build("probe", lambda: b"p" * 10)
    return probe.size


def test_the_cache_holds_no_more_bytes_than_its_bound_and_drops_the_least_recently_used():
    # Given a cache just big enough for eight 10-byte fragments, full
    cache = FragmentCache(max_bytes=8 * cost_of_ten_bytes())
    for key in "abcdefgh":
        cache.get_or_build(key, lambda: b"x" * 10)
    # When "a" is used again and a ninth fragment arrives
    assert cache.get_or_build("a", lambda: b"rebuilt!!!") == b"x" * 10
    cache.get_or_build("i", lambda: b"y" * 10)
    # Then "b", the least recently used, is gone, and the size stays within the bound
    assert cache.size <= cache.max_bytes and len(cache) == 8
    assert cache.get_or_build("b", lambda: b"b again!!!") == b"b again!!!"
    assert cache.get_or_build("a", lambda: b"never") == b"x" * 10


def test_a_fragment_too_big_for_the_cache_is_built_but_not_kept():
    # Given a cache for eight 10-byte fragments, holding one
    cache = FragmentCache(max_bytes=8 * cost_of_ten_bytes())
    cache.get_or_build("small", lambda: b"s" * 10)
    size = cache.size
    # When a fragment bigger than an eighth of it is asked for
    assert cache.get_or_build("big", lambda: b"B" * 11) == b"B" * 11
    # Then it is returned but not kept, and does not push the others out
    assert len(cache) == 1 and cache.size == size
    assert cache.get_or_build("big", lambda: b"built again") == b"built again"


def test_a_cached_render_gives_the_bytes_of_a_render_from_scratch():
    # Given the awkward corpus, rendered once into a cache
    items, gazette, cache = corpus(), site(hubs=HUBS), FragmentCache()
    first = render_formats(ALL, items, gazette, NOW, cache=cache)
    # When it is rendered again, every item now from the cache
    misses = cache.misses
    again = render_formats(ALL, items, gazette, NOW, cache=cache)
    # Then nothing was serialised again, and both renders are the standalone renderers' bytes
    assert cache.misses == misses and cache.hits == 3 * len(items)
    cold = {"rss": render_rss(ALL, items, gazette, NOW), "atom": render_atom(ALL, items, gazette, NOW),
            "json": render_json(ALL, items, gazette, NOW)}
    assert first == again == cold


def test_a_new_revision_of_an_item_is_serialised_again():
    # Given three items rendered into a cache
    cache, gazette = FragmentCache(), site()
    items = entries(3)
    render_formats(ALL, items, gazette, NOW, cache=cache)
    # When the second is edited (a new revision with a new title) and the feed rendered again
    edited = stored(article(2, title="Story number 2, corrected"), revision=2, modified_at=T0)
    changed = newest_first([items[0], edited, items[2]])
    misses = cache.misses
    rendered = render_formats(ALL, changed, gazette, NOW, cache=cache)
    # Then only that item was serialised, once per format, and the feed carries the new title
    assert cache.misses - misses == 3
    assert rendered == render_formats(ALL, changed, gazette, NOW)
    assert b"Story number 2, corrected" in rendered["rss"]


def test_other_site_settings_do_not_reuse_fragments():
    # Given items rendered into a cache for one site
    cache, items = FragmentCache(), entries(2)
    render_formats(ALL, items, site(), NOW, cache=cache)
    # When the site moves to another host and renders in another language
    moved = site(base_url="https://elsewhere.example.com/", language="ar")
    rendered = render_formats(ALL, items, moved, NOW, cache=cache)
    # Then every item is written afresh, with ids on the new host
    assert rendered == render_formats(ALL, items, moved, NOW)
    assert b"tag:elsewhere.example.com," in rendered["atom"]
