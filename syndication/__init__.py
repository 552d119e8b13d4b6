"""syndication: event-driven RSS 2.0, Atom 1.0 and JSON Feed publishing with exactly-once social posts.

The domain package: articles, the store, feeds, composing posts, channels and publishing.
It knows nothing of Celery or of the web framework.

>>> from syndication import Store, parse_article, publish, render_feed
"""
from syndication.articles import Article, Author, Image, Social, StoredArticle, parse_article
from syndication.errors import (
    AlreadyPosted,
    ChannelError,
    ConfigError,
    FieldError,
    MediaRefused,
    NotFound,
    PermanentChannelError,
    RateLimited,
    RejectedPost,
    StoreError,
    SyndicationError,
    TransientChannelError,
    ValidationError,
)
from syndication.publishing import Dispatcher, Outcome, announce, publish, unpublish
from syndication.rendering import render_all, render_feed
from syndication.site import load_site
from syndication.store import Store

__all__ = [
    "AlreadyPosted",
    "Article",
    "Author",
    "ChannelError",
    "ConfigError",
    "Dispatcher",
    "FieldError",
    "Image",
    "MediaRefused",
    "NotFound",
    "Outcome",
    "PermanentChannelError",
    "RateLimited",
    "RejectedPost",
    "Social",
    "Store",
    "StoreError",
    "StoredArticle",
    "SyndicationError",
    "TransientChannelError",
    "ValidationError",
    "announce",
    "load_site",
    "parse_article",
    "publish",
    "render_all",
    "render_feed",
    "unpublish",
]
