"""Social channels. ``syndication.channels.x`` (tweepy) is imported only by who needs it."""
from syndication.channels.base import Channel, PostResult
from syndication.channels.preview import PreviewChannel

__all__ = ["Channel", "PostResult", "PreviewChannel"]
