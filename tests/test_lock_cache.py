"""The parsed-lock cache (lockfile.read): an unchanged lock is not parsed again, and the cache never answers for
any other text, another dockwright, or an entry it did not write whole: then the text is parsed, as without it."""

from __future__ import annotations

import hashlib
import marshal
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler import lockfile
from compiler.driver import compile_project
from compiler.errors import ConfigError
from compiler.lockfile import Lock
from test_lock_file import locks

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DOCKWRIGHT_CACHE_DIR", str(folder))
    monkeypatch.delenv("DOCKWRIGHT_NO_CACHE", raising=False)
    return folder


def _outcome(read: Callable[[], Lock | None]) -> Any:
    """What reading gives: the lock, or the exact error lines."""
    try:
        return read()
    except ConfigError as err:
        return [d.format() for d in err.diagnostics]


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("lock-*")) if folder.is_dir() else []


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, text: str) -> Lock:
        raise AssertionError("parsed again")
    monkeypatch.setattr(lockfile, "parse", refuse)


def test_an_unchanged_lock_is_read_from_the_cache_and_equals_what_parse_gives(cache: Path, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dockwright.lock"
    shutil.copyfile(REPO / "examples/platform/dockwright.lock", path)
    parsed = lockfile.parse(path, path.read_text())
    assert lockfile.read(path) == parsed
    [entry] = _entries(cache)
    _no_parse(monkeypatch)
    again = lockfile.read(path)
    assert again == parsed
    assert lockfile.render(again) == path.read_text()  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(locks(), st.data())
def test_any_edit_after_caching_reads_exactly_as_parse_reads_it(cache: Path, tmp_path: Path, lock: Lock,
                                                               data: st.DataObject) -> None:
    path = tmp_path / "dockwright.lock"
    text = lockfile.render(lock)
    path.write_text(text, encoding="utf-8", newline="")
    assert lockfile.read(path) == lock  # now cached
    at = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3))
    edited = text[:at] + insert + text[at + data.draw(st.integers(0, 3)):]
    path.write_text(edited, encoding="utf-8", newline="")
    assert _outcome(lambda: lockfile.read(path)) == _outcome(lambda: lockfile.parse(path, edited))
    path.write_text(text, encoding="utf-8", newline="")  # and back: the same lock again
    assert lockfile.read(path) == lock


def _stored(cache: Path) -> tuple[Path, tuple[Any, ...]]:
    [entry] = _entries(cache)
    return entry, marshal.loads(entry.read_bytes())


BAD_ENTRIES: dict[str, Callable[[bytes, tuple[Any, ...]], bytes]] = {
    "empty": lambda raw, entry: b"",
    "truncated": lambda raw, entry: raw[: len(raw) // 2],
    "garbage": lambda raw, entry: b"\x00\xffnot marshal" * 10,
    "not a tuple": lambda raw, entry: marshal.dumps({"a": 1}),
    "a tuple of another length": lambda raw, entry: marshal.dumps(entry[:4]),
    "another format": lambda raw, entry: marshal.dumps((entry[0] + 1, *entry[1:])),
    "another dockwright": lambda raw, entry: marshal.dumps((entry[0], ("3.0", ()), *entry[2:])),
    "another lock text": lambda raw, entry: marshal.dumps((*entry[:2], "0" * 64, *entry[3:])),
    "a changed payload": lambda raw, entry: marshal.dumps((*entry[:4], entry[4].replace(b"sha256:", b"sha256;"))),
    "a payload of the right digest but another shape": lambda raw, entry: marshal.dumps(
        (*entry[:3], __import__("hashlib").sha256(marshal.dumps((1, 2, 3))).hexdigest(), marshal.dumps((1, 2, 3)))),
}


@pytest.mark.parametrize("how", sorted(BAD_ENTRIES))
def test_an_entry_that_is_corrupt_or_from_another_version_is_ignored_and_written_again(
        how: str, cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "dockwright.lock"
    shutil.copyfile(REPO / "examples/ml-training/dockwright.lock", path)
    parsed = lockfile.parse(path, path.read_text())
    lockfile.read(path)
    entry, stored = _stored(cache)
    good = entry.read_bytes()
    entry.write_bytes(BAD_ENTRIES[how](good, stored))
    assert lockfile.read(path) == parsed  # parsed again, no traceback
    assert entry.read_bytes() == good  # and kept again, whole
    assert [p.name for p in cache.iterdir()] == [entry.name]  # no temporary file left behind


def test_an_entry_that_cannot_be_read_or_written_is_no_entry(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "dockwright.lock"
    shutil.copyfile(REPO / "examples/quickstart/dockwright.lock", path)
    parsed = lockfile.parse(path, path.read_text())
    lockfile.read(path)
    [entry] = _entries(cache)
    entry.unlink()
    entry.mkdir()  # a folder where the entry goes: not readable as one, not replaceable
    assert lockfile.read(path) == parsed
    assert entry.is_dir()
    shutil.rmtree(cache)
    cache.write_text("a file where the cache folder goes")
    assert lockfile.read(path) == parsed


def test_no_cache_writes_nothing(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dockwright.lock"
    shutil.copyfile(REPO / "examples/quickstart/dockwright.lock", path)
    monkeypatch.setenv("DOCKWRIGHT_NO_CACHE", "1")
    assert lockfile.read(path) == lockfile.parse(path, path.read_text())
    assert not cache.exists()


def test_a_lock_with_errors_is_not_kept(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "dockwright.lock"
    text = (REPO / "examples/quickstart/dockwright.lock").read_text()
    path.write_text(text.replace("version = 1", "version = 2", 1))
    with pytest.raises(ConfigError):
        lockfile.read(path)
    assert _entries(cache) == []


def _compiled(root: Path) -> Any:
    try:
        return compile_project(root / "dockwright.yaml").files
    except ConfigError as err:
        return [d.format() for d in err.diagnostics]


@pytest.fixture(scope="module")
def platform_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("platform") / "platform"
    shutil.copytree(REPO / "examples/platform", root, ignore=shutil.ignore_patterns("generated"))
    return root


_HEX = [m.start() for m in re.finditer(r"(?<=sha256:)[0-9a-f]{64}", (REPO / "examples/platform/dockwright.lock")
                                       .read_text())]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_editing_one_hash_digit_compiles_exactly_as_without_the_cache(cache: Path, platform_copy: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     data: st.DataObject) -> None:
    lock = platform_copy / "dockwright.lock"
    text = (REPO / "examples/platform/dockwright.lock").read_text()
    lock.write_text(text)
    before = _compiled(platform_copy)  # also keeps the lock in the cache
    start = data.draw(st.sampled_from(_HEX))
    at = start + data.draw(st.integers(0, 63))
    edited = text[:at] + data.draw(st.sampled_from([c for c in "0123456789abcdef" if c != text[at]])) + text[at + 1:]
    lock.write_text(_resealed(edited) if data.draw(st.booleans()) else edited)
    cached = _compiled(platform_copy)
    with monkeypatch.context() as m:
        m.setenv("DOCKWRIGHT_NO_CACHE", "1")
        assert cached == _compiled(platform_copy)
    lock.write_text(text)
    assert _compiled(platform_copy) == before


def _resealed(text: str) -> str:
    """text with the checksum of what it now says: as `lock` would write those values (an edit the checksum
    does not give away, so that what the cache gives is what the values make)."""
    lines = text.split("\n")
    body = "\n".join(lines[4:])
    lines[3] = f'checksum = "sha256:{hashlib.sha256(body.encode()).hexdigest()}"'
    return "\n".join(lines)


def test_an_edited_file_hash_or_inputs_digest_is_seen_through_the_cache(cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples/quickstart", root, ignore=shutil.ignore_patterns("generated"))
    lock = root / "dockwright.lock"
    text = lock.read_text()
    before = _compiled(root)
    old = re.search(r'hash = "(sha256:[0-9a-f]{64})"', text).group(1)  # type: ignore[union-attr]
    new = old[:-1] + ("0" if old[-1] != "0" else "1")
    lock.write_text(_resealed(text.replace(old, new)))
    after = _compiled(root)
    changed = sorted(rel for rel in before if after.get(rel) != before[rel])
    assert changed and all(new in after[rel] for rel in changed if rel.endswith("requirements.txt"))
    assert not any(old in body for body in after.values())
    inputs = re.search(r'inputs = "sha256:([0-9a-f]{64})"', text).group(1)  # type: ignore[union-attr]
    lock.write_text(_resealed(text.replace(inputs, inputs[::-1])))
    [error] = _compiled(root)
    assert "has changed since dockwright.lock was written" in error
    lock.write_text(text)
    assert _compiled(root) == before


def test_the_cache_keeps_one_entry_per_lock_file(cache: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "dockwright.lock", tmp_path / "b" / "dockwright.lock"
    for path in (a, b):
        path.parent.mkdir()
        shutil.copyfile(REPO / "examples/quickstart/dockwright.lock", path)
        lockfile.read(path)
    assert len(_entries(cache)) == 2
    shutil.copyfile(REPO / "examples/ml-training/dockwright.lock", a)  # another lock in the same place
    assert lockfile.read(a) == lockfile.parse(a, a.read_text())
    assert len(_entries(cache)) == 2
