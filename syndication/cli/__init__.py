"""The ``syndication`` command."""
from syndication.cli.app import app, main

__all__ = ["app", "main"]
