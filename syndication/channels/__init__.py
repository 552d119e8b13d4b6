"""Social channels: the ``Channel`` protocol, one adapter module per service (each declares its
kind as ``KIND``), and the registry (``syndication.channels.registry``) that names each kind's
module once and imports it only where an account of that kind is configured."""
from syndication.channels.base import Channel, PostResult
from syndication.channels.preview import PreviewChannel

__all__ = ["Channel", "PostResult", "PreviewChannel"]
