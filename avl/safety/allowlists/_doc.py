"""The shape of one allow-list entry group: a documentation page and the names it lists."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Doc"]


class Doc(NamedTuple):
    """Function names listed on one page of an engine's documentation.

    ``url`` is the documentation page the names come from (so every entry is
    traceable); ``kind`` is ``"scalar"``, ``"aggregate"``, ``"window"``, ``"table"`` (a
    table-valued function, allowed in ``FROM``/``JOIN``) or ``"syntax"`` (a function-like
    SQL construct that the engine's catalogue does not list, such as ``COALESCE``);
    ``names`` are the names, separated by white space, where ``name@3.44`` marks a name
    the engine has only since that version (the existence test skips it on older
    engines).
    """

    url: str
    """The documentation page the names come from."""
    kind: str
    """``scalar``, ``aggregate``, ``window``, ``table`` or ``syntax``."""
    names: str
    """The names, separated by white space (``name@3.44``: since that version)."""
