"""The ``avl train`` JSON-lines file: a damaged line is reported, never skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from avl.cli._common import load_training
from avl.errors import CorruptionError


class Recorder:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def train(self, **kwargs: Any) -> list[str]:
        self.items.append(kwargs)
        return [str(len(self.items))]


GOOD = (
    b'{"question": "q1", "sql": "SELECT 1", "added_by": "ann"}\n'
    b'{"documentation": "orders are sales"}\n'
    b'{"question": "q2", "sql": "SELECT 2"}\n'
)


def test_intact_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(GOOD)
    rec = Recorder()
    assert load_training(rec, path) == 3
    assert rec.items[0] == {"question": "q1", "sql": "SELECT 1", "added_by": "ann"}


@pytest.mark.parametrize(
    ("damaged", "line", "affected", "why"),
    [
        (GOOD.replace(b'"documentation"', b'"documen\xfftation"'), 2, 2, "not UTF-8"),
        (GOOD.replace(b"orders are sales", b'orders "are sales'), 2, 2, "not JSON"),
        (GOOD[:-10], 3, 1, "not JSON"),
        (GOOD.replace(b'{"documentation": "orders are sales"}', b"[1, 2]"), 2, 2, "JSON object"),
    ],
)
def test_damaged_line_is_named(
    tmp_path: Path, damaged: bytes, line: int, affected: int, why: str
) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(damaged)
    with pytest.raises(CorruptionError, match=why) as info:
        load_training(Recorder(), path)
    err = info.value
    offset = sum(len(x) + 1 for x in damaged.split(b"\n")[: line - 1])
    assert (err.path, err.offset, err.records_affected) == (str(path), offset, affected)
    assert f"{path}:{line} (byte {offset})" in str(err)
