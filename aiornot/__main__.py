"""``python -m aiornot …`` is the ``aiornot`` command: every subcommand lives in :mod:`aiornot.cli`."""

import sys

from aiornot.cli import main

sys.exit(main())
