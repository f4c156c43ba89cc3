"""``python -m esb.cli``: the same as the ``esb`` console script, exit code included."""

import sys

from esb.cli.main import main

sys.exit(main())
