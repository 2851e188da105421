"""`python -m deploy.export ...`: the same code as `edgevision export ...`."""

import sys

from deploy.export.cli import main

sys.exit(main(["export", *sys.argv[1:]]))
