"""``python -m autoprune.cli``."""

import sys

from autoprune.cli import main

sys.exit(main())
