"""`python -m tui`: the same as `cloudrig` (textual-serve runs this)."""

import sys

from tui.cli import main

sys.exit(main())
