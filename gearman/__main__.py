"""``python -m gearman``: the ``cygearman`` command line (see :mod:`gearman.cli`)."""
import sys

from gearman.cli import main

if __name__ == "__main__":
    sys.exit(main())
