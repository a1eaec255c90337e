"""python3 -m compare: see compare/run.py; python3 -m compare diff OLD NEW: see compare/diff.py."""

import sys

if sys.argv[1:2] == ["diff"]:
    from .diff import main
    sys.exit(main(sys.argv[2:]))

from .run import main

sys.exit(main(sys.argv[1:]))
