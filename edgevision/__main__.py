"""`python -m edgevision COMMAND ...`: the same as the `edgevision` console command."""

import sys

from edgevision import main

sys.exit(main())
