"""``python -m aios_shell ...`` is ``aios ...`` (what a detached ``aios serve`` starts)."""

import sys

from aios_shell.cli import main

sys.exit(main())
