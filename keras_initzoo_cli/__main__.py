"""``python -m keras_initzoo_cli`` runs the ``initzoo`` command line."""

import sys

from . import main

sys.exit(main())
