"""The CLI's runtime: the shared ``syndication.runtime.Runtime``."""
from syndication.runtime import Runtime

__all__ = ["Runtime"]
