"""``python -m torch_deepsmote.cli``: the same as the ``torch-deepsmote`` command."""

import sys

from . import main

sys.exit(main())
