"""python3 -m compare: see compare/run.py."""

import sys

from .run import main

sys.exit(main(sys.argv[1:]))
