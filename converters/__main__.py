"""``python -m converters`` is the ``gateport`` command."""
import sys

from .cli import main

sys.exit(main())
