"""``python -m tools.sample build-sample [--out DIR] [--only NAME ...]``."""

import sys

from tools.sample.builder import main

sys.exit(main())
