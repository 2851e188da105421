"""`python -m deploy predict|info|verify ...`: the runtime's commands, the same code as `edgevision` runs
for them. The exporter (torch) is not reachable from here: `python -m deploy.export` or `edgevision export`."""

import sys

from deploy.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] == ["export"]:
        sys.exit("python -m deploy: the exporter is `python -m deploy.export ...` (or `edgevision export ...`)")
    sys.exit(main(sys.argv[1:]))
