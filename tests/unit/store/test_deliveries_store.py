"""The delivery ledger keeps what each service answers, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

from syndication.store import Store
from syndication.store.deliveries import claim, ensure_delivery, get_delivery, mark_posted
from tests.conftest import FixedClock

# What the Bluesky adapter records: the post's whole at:// URI, which delete and adopt use.
BLUESKY_URI = "at://did:plc:abcdefghijklmnopqrstuvwx/app.bsky.feed.post/3lbcdefghijk2"


def test_a_bluesky_post_s_whole_uri_is_recorded_as_posted(any_store: Store, clock: FixedClock) -> None:
    # Given a Bluesky delivery claimed by a worker
    with any_store.transaction() as session:
        d, _ = ensure_delivery(session, article_id="art-1", revision=1, channel="bluesky", action="post",
                               text="Article 1 https://news.test.example/a/1", now=clock())
        assert claim(session, d.id, now=clock(), lease=timedelta(seconds=60))
    # When the post is made and its at:// URI (longer than 64 characters) is recorded
    assert len(BLUESKY_URI) > 64
    with any_store.transaction() as session:
        mark_posted(session, d.id, remote_id=BLUESKY_URI, remote_url="https://bsky.app/profile/n/post/3lbc",
                    now=clock())
    # Then the ledger says posted and keeps the whole URI, so a withdrawal can delete that post
    with any_store.read() as session:
        stored = get_delivery(session, d.id)
    assert stored is not None and stored.state == "posted" and stored.remote_id == BLUESKY_URI
