"""Telling WebSub hubs that feeds changed."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import requests

log = logging.getLogger(__name__)


def ping_hubs(hubs: Sequence[str], feed_urls: Sequence[str], *, timeout: float = 5.0) -> dict[str, int | str]:
    """POST a publish notification for each feed URL to each hub; returns hub → HTTP status or error.

    Spec: WebSub (W3C Recommendation) §5 leaves publisher→hub notification to the hub; every
    public hub accepts the PubSubHubbub 0.4 form ``hub.mode=publish`` with one ``hub.url`` per topic.
    """
    results: dict[str, int | str] = {}
    for hub in hubs:
        try:
            response = requests.post(hub, data=[("hub.mode", "publish"), *(("hub.url", u) for u in feed_urls)],
                                     timeout=timeout)
            results[hub] = response.status_code
        except requests.RequestException as exc:
            results[hub] = f"error: {type(exc).__name__}"
        log.info("hub pinged", extra={"hub": hub, "feeds": len(feed_urls), "result": results[hub]})
    return results
