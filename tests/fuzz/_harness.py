"""Garbage values and a guarded call for the API fuzz suite.

:func:`garbage` draws what a confused caller, a fuzzer or an attacker passes: wrong
types, huge and non-finite numbers, text with NUL and lone surrogates, ragged and
deeply nested containers, NumPy arrays of every shape and dtype, objects whose dunder
methods raise, iterators that are already exhausted. :func:`call` runs one public
call under a wall-clock alarm and accepts only a return value or an
:class:`~avl.errors.AvlError`; every call is counted.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import fractions
import math
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from avl.errors import AvlError

#: Seconds one call may take before it counts as a hang.
HANG_S = 10.0


class Stats:
    """Counts shared by the whole fuzz session (printed in the terminal summary)."""

    calls = 0
    avl_errors = 0
    returned = 0
    non_avl = 0
    hangs = 0
    per_target: dict[str, int] = {}


class Hang(Exception):
    """Raised by the alarm inside a call that ran past :data:`HANG_S`."""


class NonAvlError(AssertionError):
    """A public call raised something other than an avl error."""


class Opaque:
    """A value Hypothesis must not ``repr`` (``10**5000``, an :class:`Evil`, a very
    deep list): :func:`call` unwraps it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__}>"


def unwrap(value: Any, depth: int = 0) -> Any:
    """``value`` with every :class:`Opaque` inside lists, tuples and dicts replaced
    (down to the nesting Hypothesis builds; the deep atoms themselves are left alone)."""
    if isinstance(value, Opaque):
        return value.value
    if depth > 6:
        return value
    if type(value) is list:
        return [unwrap(v, depth + 1) for v in value]
    if type(value) is tuple:
        return tuple(unwrap(v, depth + 1) for v in value)
    if type(value) is dict:
        return {k: unwrap(v, depth + 1) for k, v in value.items()}
    return value


def call(target: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run ``fn(*args, **kwargs)``: ``(True, result)`` or ``(False, avl_error)``.

    Raises:
        NonAvlError: any other exception, or the call ran past :data:`HANG_S`.
    """
    args = tuple(unwrap(a) for a in args)
    kwargs = {k: unwrap(v) for k, v in kwargs.items()}
    Stats.calls += 1
    Stats.per_target[target] = Stats.per_target.get(target, 0) + 1
    main = threading.current_thread() is threading.main_thread()

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"{target} ran past {HANG_S} s")

    old = signal.signal(signal.SIGALRM, on_alarm) if main else None
    if main:
        signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        result = fn(*args, **kwargs)
    except Hang:
        Stats.hangs += 1
        raise NonAvlError(f"HANG: {target}{_show(args, kwargs)}") from None
    except AvlError as exc:
        Stats.avl_errors += 1
        return False, exc
    except BaseException as exc:
        Stats.non_avl += 1
        if _COLLECT:  # survey mode: note it and carry on (see the module docs)
            _note(target, exc, args, kwargs)
            return False, exc
        raise NonAvlError(
            f"{target}{_show(args, kwargs)} raised {type(exc).__module__}."
            f"{type(exc).__qualname__}: {_safe(exc)}"
        ) from exc
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    Stats.returned += 1
    return True, result


#: ``AVL_FUZZ_COLLECT=FILE`` turns failures into lines of FILE (one per distinct place)
#: instead of test failures: a survey of everything to fix in one run.
_COLLECT = os.environ.get("AVL_FUZZ_COLLECT", "")
_SEEN: set[tuple[str, str, str]] = set()


def _note(target: str, exc: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/avl/" in f.filename]
    where = f"{frames[-1].filename.rsplit('/avl/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    key = (target, type(exc).__name__, where)
    if key in _SEEN:
        return
    _SEEN.add(key)
    with open(_COLLECT, "a", encoding="utf-8") as fh:
        fh.write(f"{target} {type(exc).__name__} avl/{where} {_show(args, kwargs)[:160]}\n")


def _safe(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except BaseException:
        text = f"<{type(value).__name__} with a failing repr>"
    return text if len(text) <= limit else text[:limit] + "..."


def _show(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_safe(a, 120) for a in args] + [f"{k}={_safe(v, 120)}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


# ---------------------------------------------------------------- evil objects
class Evil:
    """Every conversion and comparison raises."""

    def _boom(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("evil object")

    __str__ = __repr__ = __format__ = __bytes__ = _boom
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _boom  # type: ignore[assignment]
    __len__ = __iter__ = __getitem__ = __contains__ = __bool__ = _boom
    __int__ = __float__ = __index__ = __complex__ = _boom
    __fspath__ = __call__ = _boom

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"evil object has no {name}")


class Color(enum.Enum):
    RED = "red"


def _exhausted() -> Iterator[Any]:
    it = iter([1, 2])
    list(it)
    return it


def _deep(depth: int, leaf: Any) -> Any:
    out = leaf
    for i in range(depth):
        out = [out] if i % 2 else {"k": out}
    return out


ATOMS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**5000,
    -(10**5000),
    0.0,
    -0.0,
    1.5,
    1e308,
    -1e308,
    5e-324,
    math.nan,
    math.inf,
    -math.inf,
    1j,
    "",
    " ",
    "a",
    "\x00",
    "\ud800",
    "\udfff\x00\ue000",
    "x" * 10_000,
    "SELECT 1",
    "DROP TABLE users; --",
    "memory://",
    "redis://",
    "sqlite:///",
    "file:///",
    "postgresql://nobody@127.0.0.1:1/x",
    "10/second",
    "0/second",
    "1/0s",
    "-5/minute",
    "99999999999999999999/second",
    b"",
    b"\xff\xfe",
    bytearray(b"abc"),
    memoryview(b"abc"),
    [],
    [None],
    [[1, 2], [3]],
    [1, "a", None],
    (),
    (1, "a", None),
    {},
    {"a": None},
    {1: 2},
    {"k": {"k": {"k": [1, {"x": math.nan}]}}},
    _deep(400, 1),
    _deep(5000, "x"),
    set(),
    {1, 2},
    frozenset({"a"}),
    range(10**18),
    dt.datetime(2020, 1, 1),
    dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
    dt.timedelta(days=-1),
    dt.timedelta(days=10**8),
    decimal.Decimal("NaN"),
    decimal.Decimal("1e999999"),
    fractions.Fraction(1, 3),
    Color.RED,
    object(),
    object,
    type,
    Evil(),
    print,
    lambda *a, **k: None,
    np.float32(np.nan),
    np.int64(-1),
    np.uint64(2**64 - 1),
    np.bool_(True),
    np.str_("x"),
    np.array([]),
    np.array(5.0),
    np.zeros((0, 3), dtype=np.float32),
    np.zeros((2, 3), dtype=np.float32),
    np.ones((1, 3), dtype=np.float64),
    np.full((1, 3), np.nan),
    np.full((1, 3), 3e38, dtype=np.float32),
    np.array(["a", "b"]),
    np.array([1 + 2j, 3j]),
    np.array([object(), None], dtype=object),
    np.zeros((2, 2, 2)),
    np.zeros((1, 10**6), dtype=np.uint8),
]


def _opaque_if_needed(value: Any) -> Any:
    try:
        text = repr(value)
    except BaseException:
        return Opaque(value)
    return Opaque(value) if len(text) > 2000 else value


#: ATOMS as Hypothesis sees them (values with a failing or huge repr wrapped).
SAFE_ATOMS = [_opaque_if_needed(v) for v in ATOMS]

atoms = st.sampled_from(SAFE_ATOMS) | st.builds(_exhausted)

text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)

leaf = atoms | text | st.integers() | st.floats() | st.binary(max_size=20)

garbage = (
    atoms
    | st.lists(atoms, min_size=1, max_size=3)
    | st.recursive(
        leaf,
        lambda children: (
            st.lists(children, max_size=4)
            | st.tuples(children, children)
            | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=3)
        ),
        max_leaves=8,
    )
)
"""Any value at all, nested a little."""


def vectors(dim: int) -> st.SearchStrategy[Any]:
    """Vector-ish inputs for a store of ``dim``: some valid, most not."""
    good = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=dim, max_size=dim)
    return (
        good
        | st.lists(good, min_size=0, max_size=3)
        | st.lists(st.floats(), min_size=0, max_size=dim + 2)
        | st.lists(st.lists(st.floats(), max_size=dim + 1), max_size=3)
        | garbage
    )


#: Examples per test (``AVL_FUZZ_EXAMPLES``); derandomised unless ``AVL_FUZZ_RANDOM``.
EXAMPLES = int(os.environ.get("AVL_FUZZ_EXAMPLES", "200"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("AVL_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)
atom = st.sampled_from(SAFE_ATOMS)
