"""``python -m mirsearch``: the command line (:func:`mirsearch.cli.main.main`)."""

import sys

from mirsearch.cli.main import main

sys.exit(main())
