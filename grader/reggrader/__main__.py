"""``python -m reggrader`` is the ``reggrader`` command."""

import sys

from .cli import main

sys.exit(main())
