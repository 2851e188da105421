"""`python -m benchmarks bench|report|sweep ...`: the same code as `edgevision bench|report|sweep`."""

import sys

if sys.argv[1:2] == ["sweep"]:
    from benchmarks.sweep import main
else:
    from benchmarks.cli import main

sys.exit(main(sys.argv[1:]))
