"""The lazy-import helpers of ``avl._lazy``."""

from __future__ import annotations

import json.decoder
import sys
import types

import pytest

from avl._lazy import LazyPattern, lazy_module


def test_a_lazy_module_reads_through_to_the_module() -> None:
    stand_in = lazy_module("json.decoder")
    assert stand_in.JSONDecodeError is json.decoder.JSONDecodeError
    assert "json.decoder" in repr(stand_in)


def test_a_lazy_module_with_a_home_replaces_itself_there(monkeypatch: pytest.MonkeyPatch) -> None:
    home = types.ModuleType("avl_lazy_home")
    monkeypatch.setitem(sys.modules, "avl_lazy_home", home)
    home.decoder = lazy_module("json.decoder", "avl_lazy_home")  # type: ignore[attr-defined]
    assert home.decoder is not json.decoder  # type: ignore[attr-defined]
    assert home.decoder.JSONDecodeError is json.decoder.JSONDecodeError  # type: ignore[attr-defined]
    assert home.decoder is json.decoder  # type: ignore[attr-defined]


def test_a_lazy_pattern_matches_as_the_compiled_one() -> None:
    pattern = LazyPattern(r"a(b+)")
    assert pattern.search("xabbb") is not None
    assert pattern.sub("-", "abab") == "--"
    assert pattern.pattern == "a(b+)"
