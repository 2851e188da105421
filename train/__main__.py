"""`python -m train train|eval ...` (also what `torchrun -m train train ...` runs)."""

import sys

from train.cli import main

sys.exit(main(sys.argv[1:]))
