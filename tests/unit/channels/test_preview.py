"""The preview channel: what would be posted, in memory and in a JSON-lines file."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from syndication.channels import Channel, PostResult, PreviewChannel
from syndication.errors import AlreadyPosted, PermanentChannelError

ARTICLE = "https://news.example.org/2026/05/01/climate-deal"


def test_it_is_a_channel() -> None:
    assert isinstance(PreviewChannel(), Channel)


def test_a_post_is_recorded_and_written_to_the_file(tmp_path: Path) -> None:
    # Given a preview channel writing under the data folder
    path = tmp_path / "var" / "preview.jsonl"
    channel = PreviewChannel(path)
    # When it posts
    result = channel.post(f"Climate deal {ARTICLE}", url=ARTICLE)
    # Then the post is in memory and one JSON line shows it
    assert channel.posts[0].text == f"Climate deal {ARTICLE}"
    assert result == PostResult(channel.posts[0].remote_id, f"preview://posts/{result.remote_id}")
    line = json.loads(path.read_text(encoding="utf-8"))
    assert line["action"] == "post" and line["id"] == result.remote_id
    assert line["text"] == f"Climate deal {ARTICLE}" and line["url"] == ARTICLE


def test_non_ascii_text_is_readable_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "preview.jsonl"
    PreviewChannel(path).post(f"気候変動 👨‍👩‍👧‍👦 {ARTICLE}", url=ARTICLE)
    assert "気候変動 👨‍👩‍👧‍👦" in path.read_text(encoding="utf-8")


def test_without_a_file_nothing_is_written(tmp_path: Path) -> None:
    channel = PreviewChannel()
    channel.post(f"Hi {ARTICLE}", url=ARTICLE)
    assert list(tmp_path.iterdir()) == []
    assert len(channel.posts) == 1


def test_find_post_finds_the_article_and_skips_deleted_posts() -> None:
    channel = PreviewChannel()
    first = channel.post(f"First {ARTICLE}", url=ARTICLE)
    channel.post("Other https://news.example.org/other", url="https://news.example.org/other")
    assert channel.find_post(ARTICLE) == first
    channel.delete(first.remote_id)
    assert channel.find_post(ARTICLE) is None
    assert channel.posts[0].deleted


def test_a_restarted_process_finds_earlier_posts_in_the_file(tmp_path: Path) -> None:
    # Given a post made before a crash
    path = tmp_path / "preview.jsonl"
    before = PreviewChannel(path).post(f"Before the crash {ARTICLE}", url=ARTICLE)
    # When a new process asks whether the article was posted
    after = PreviewChannel(path)
    # Then it finds the post from the file
    assert after.find_post(ARTICLE) == before
    after.delete(before.remote_id)
    assert PreviewChannel(path).find_post(ARTICLE) is None


def test_a_truncated_last_line_does_not_break_find_post(tmp_path: Path) -> None:
    path = tmp_path / "preview.jsonl"
    result = PreviewChannel(path).post(f"Kept {ARTICLE}", url=ARTICLE)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"action": "post", "id": "cut sho')
    assert PreviewChannel(path).find_post(ARTICLE) == result


def test_duplicates_can_be_refused_like_x() -> None:
    channel = PreviewChannel(reject_duplicates=True)
    channel.post(f"Once {ARTICLE}", url=ARTICLE)
    with pytest.raises(AlreadyPosted):
        channel.post(f"Once {ARTICLE}", url=ARTICLE)


def test_add_list_member_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "preview.jsonl"
    channel = PreviewChannel(path)
    channel.add_list_member("@adareporter")
    channel.add_list_member("AdaReporter")
    assert channel.list_members == ["adareporter"]
    assert [json.loads(l)["action"] for l in path.read_text().splitlines()] == ["add_list_member"] * 2


def test_an_unwritable_file_is_a_permanent_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    channel = PreviewChannel(blocker / "preview.jsonl")
    with pytest.raises(PermanentChannelError):
        channel.post(f"Hi {ARTICLE}", url=ARTICLE)
    assert channel.posts == []


def test_posts_from_many_threads_are_all_kept(tmp_path: Path) -> None:
    # Given eight threads posting at once
    path = tmp_path / "preview.jsonl"
    channel = PreviewChannel(path)

    def post_many(n: int) -> None:
        for i in range(50):
            channel.post(f"Thread {n} item {i} {ARTICLE}", url=ARTICLE)

    threads = [threading.Thread(target=post_many, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then every post is in memory and in the file, each whole and with its own id
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(channel.posts) == len(lines) == 400
    assert len({line["id"] for line in lines}) == 400


def test_find_post_matches_whole_links_only() -> None:
    channel = PreviewChannel()
    channel.post(f"Another story {ARTICLE}0", url=f"{ARTICLE}0")
    assert channel.find_post(ARTICLE) is None
