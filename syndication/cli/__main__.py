"""``python -m syndication.cli``: the same as the ``syndication`` command."""
from syndication.cli import main

main()
