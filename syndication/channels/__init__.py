"""Social channels: the ``Channel`` protocol, one adapter module per service, and the registry
(``syndication.channels.registry``) that declares each kind once. Adapters are imported only by
who needs them (the registry, the workers): never by the web process."""
from syndication.channels.base import Channel, PostResult
from syndication.channels.preview import PreviewChannel

__all__ = ["Channel", "PostResult", "PreviewChannel"]
