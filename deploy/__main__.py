"""`python -m deploy export|predict|info ...`: the same code as `edgevision export|predict|info`."""

import sys

from deploy.cli import main

if __name__ == "__main__":
    sys.exit(main())
