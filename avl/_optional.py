"""Lazy imports of optional dependencies.

``import avl`` imports none of the optional dependencies. A backend imports its driver
in its constructor through :func:`require`, which fails with the exact install line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from avl.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`~avl.errors.MissingDependencyError`.

    Args:
        module: the dotted module name, e.g. ``"redis.asyncio"``.
        extra: the avl extra that installs it, e.g. ``"redis"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: the module is not installed; the message names
            ``pip install 'avl[<extra>]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra) from exc
