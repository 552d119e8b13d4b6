"""Entry points: the ``syndication`` command (``apps.cli``) and the HTTP service (``apps.web``).

They sit above both ``workers`` and the ``syndication`` domain: they read the settings once,
wire the store, the dispatcher and the channels together, and hand them down. Nothing below
imports from here.
"""
