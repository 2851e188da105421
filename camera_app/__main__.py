"""`python -m camera_app ...`: the same code as `edgevision camera ...`."""

import sys

from camera_app.cli import main

if __name__ == "__main__":
    sys.exit(main(["camera", *sys.argv[1:]]))
