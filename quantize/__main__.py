"""`python -m quantize prune|quantize ...`: the same code as `edgevision prune|quantize`."""

import sys

from quantize.cli import main

sys.exit(main())
