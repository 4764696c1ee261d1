"""``python -m tools.sample build-sample [--out DIR] [--only NAME ...]``: the same as ``aiornot build-sample …``."""

import sys

from tools.sample.builder import main

sys.exit(main())
