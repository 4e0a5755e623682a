"""``python -m avl.cli``: the same as the ``avl`` command."""

from avl.cli import main

raise SystemExit(main())
