"""``python -m torch_deepsmote.cli``: the same as the ``torch-deepsmote`` command."""

import sys

from . import main

if __name__ == "__main__":  # not when a tool (pytest's doctest collection) imports it
    sys.exit(main())
