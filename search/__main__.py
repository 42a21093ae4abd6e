"""``python -m search``: see :mod:`search.cli`."""
import sys

from .cli import main

sys.exit(main())
