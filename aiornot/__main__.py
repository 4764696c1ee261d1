"""``python -m aiornot …`` is the ``aiornot`` command: every subcommand lives in :mod:`aiornot.apps.cli`."""

import sys

from aiornot.apps.cli import main

sys.exit(main())
