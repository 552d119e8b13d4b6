"""``python -m apps.cli``: the same as the ``syndication`` command."""
from apps.cli import main

main()
