"""Settings for syndication: one environment model and the site's TOML.

Read once at the edges (CLI, Celery app, web start-up) and passed on as values.
"""
from config.settings import Settings
from config.site import ChannelConfig, FeedsConfig, SiteConfig, SiteInfo, SocialConfig, StaffMember

__all__ = [
    "ChannelConfig",
    "FeedsConfig",
    "Settings",
    "SiteConfig",
    "SiteInfo",
    "SocialConfig",
    "StaffMember",
]
