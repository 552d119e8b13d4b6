"""How services count a post's length: the one module that imports twitter_text.

Each channel kind names its rule in the registry (``PostRules.length``); composing a post
measures with it and never assumes one service's counting.
"""
from __future__ import annotations

import re

import regex
from twitter_text import parse_tweet

# Spec: Mastodon — every URL in a status counts as 23 characters, whatever its length.
_URL = re.compile(r"https?://\S+")
MASTODON_URL_LENGTH = 23


def weighted_length(text: str) -> int:
    """X's weighted length (Spec: X counting characters — a link counts 23, a CJK character
    or an emoji 2, most Latin text 1)."""
    return parse_tweet(text).weightedLength


def mastodon_length(text: str) -> int:
    """Characters, with each link counted as 23 (Spec: Mastodon statuses — character counting)."""
    return len(_URL.sub("x" * MASTODON_URL_LENGTH, text))


def grapheme_length(text: str) -> int:
    """Extended grapheme clusters (Spec: Bluesky app.bsky.feed.post — text maxGraphemes 300)."""
    return len(regex.findall(r"\X", text))
