"""``python -m avl``: the same as the ``avl`` command."""

from avl.cli import main

raise SystemExit(main())
