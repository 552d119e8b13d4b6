"""The ``syndication`` command."""
from apps.cli.app import app, main

__all__ = ["app", "main"]
