"""``python -m entrannas_timm.train``: the same command as ``entrannas train``."""
import sys

from .cli import main

sys.exit(main())
