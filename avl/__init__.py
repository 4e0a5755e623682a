"""avl: ask a database safely.

The primitives live in subpackages and are imported from there::

    from avl.safety import Policy, SafeQuery
    from avl.ratelimit import RateLimiter
    from avl.vectors import VectorStore
    from avl.history import History, Entry
    from avl.assistant import Assistant

``import avl`` itself is cheap: it imports no optional dependency and no backend.
"""

from __future__ import annotations

from avl._clock import Clock, SystemClock
from avl.errors import AvlError

__version__ = "0.1.0"

__all__ = ["AvlError", "Clock", "SystemClock", "__version__"]
