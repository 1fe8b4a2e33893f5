"""``python -m lore_daemon``: the same as the ``lore-daemon`` script."""

import sys

from lore_daemon.cli import main

if __name__ == "__main__":
    sys.exit(main())
