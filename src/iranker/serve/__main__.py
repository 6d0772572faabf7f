"""``python -m iranker.serve [flags]`` — same as ``iranker serve``."""

import sys

from .command import main

sys.exit(main())
