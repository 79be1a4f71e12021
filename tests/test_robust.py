"""Hostile input found by an attack run: each a class, never a traceback or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import lockfile
from compiler.errors import ConfigError


def _lock_error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        lockfile.parse(Path("dockwright.lock"), text)
    return err.value.render().splitlines()[0]


@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{x = ", "}")])
def test_a_deeply_nested_lock_file_is_a_located_error(opener: str, closer: str) -> None:
    text = "version = 1\nx = " + opener * 5000 + closer * 5000 + "\n"
    col = 5 + 99 * len(opener)
    assert _lock_error(text) == (
        f"dockwright.lock:2:{col}: error: dockwright.lock is not valid TOML: arrays or tables nested too deeply "
        "(run `dockwright lock` to write it again)")


def test_a_deeply_nested_pyproject_is_a_note(tmp_path: Path) -> None:
    from compiler.init import Found, _read_toml

    path = tmp_path / "pyproject.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    found = Found("p", "3.12")
    assert _read_toml(path, found) == {}
    assert found.notes == ["pyproject.toml was not read: not valid TOML: arrays or tables nested too deeply"]


def test_a_deeply_nested_manifest_is_not_ours() -> None:
    from compiler.emit import _manifest

    assert _manifest(b"[" * 100000 + b"]" * 100000) is None
