"""``python -m matrixprop``: the command line (see :mod:`matrixprop.cli`)."""

from .cli import main

raise SystemExit(main())
