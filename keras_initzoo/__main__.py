"""``python -m keras_initzoo`` runs the ``initzoo`` command line."""

import sys

from .cli import main

sys.exit(main())
