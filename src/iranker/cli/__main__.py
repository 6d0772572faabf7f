"""``python -m iranker.cli``: the same entry point as the ``iranker`` script."""

import sys

from .main import main

sys.exit(main())
