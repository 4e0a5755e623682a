"""avl: ask a database safely.

The primitives live in subpackages and are imported from there::

    from avl.safety import Policy, SafeQuery
    from avl.ratelimit import RateLimiter
    from avl.vectors import VectorStore
    from avl.history import History, Entry
    from avl.assistant import Assistant

``import avl`` itself is cheap: it imports no optional dependency and no backend,
and the names below are loaded on first use (``avl --version`` reads
``__version__`` without importing anything else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from avl._clock import Clock, SystemClock
    from avl.errors import AvlError

__version__ = "0.1.0"

__all__ = ["AvlError", "Clock", "SystemClock", "__version__"]

# public name -> the module that defines it, imported on first access (PEP 562)
_LAZY = {"AvlError": "avl.errors", "Clock": "avl.typing", "SystemClock": "avl._clock"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avl' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
