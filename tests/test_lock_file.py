"""dockwright.lock: the writer is deterministic and the reader gives it back; anything else is one located
error that says to run `dockwright lock`."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler import lockfile
from compiler.errors import ConfigError
from compiler.lockfile import File, Lock, LockedImage, Package, Parent

H = "sha256:" + "ab" * 32
PATH = Path("dockwright.lock")

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
_names = st.from_regex(r"[a-z0-9]{1,5}(-[a-z0-9]{1,5}){0,2}", fullmatch=True)  # canonical names, as a lock holds them
_plats = st.lists(st.sampled_from(lockfile.PLATFORMS), min_size=1, unique=True).map(lambda p: tuple(sorted(p)))
_hashes = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)
_files = st.builds(File, name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,30}", fullmatch=True), hash=_hashes,
                   size=st.none() | st.integers(0, 2**40), platforms=st.just(()) | _plats)
_packages = st.builds(Package, name=_names, version=st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True),
                      via=st.lists(_text, max_size=3).map(tuple),
                      files=st.lists(_files, min_size=1, max_size=3).map(tuple), platforms=st.just(()) | _plats)
_parents = st.builds(Parent, ref=_text, digest=_hashes,
                     platforms=st.dictionaries(st.sampled_from(lockfile.PLATFORMS), _hashes).map(
                         lambda d: tuple(sorted(d.items())))) | st.builds(Parent, ref=_text, digest=st.just(""),
                                                                          platforms=st.just(()))  # --skip-parents


@st.composite
def locks(draw: st.DrawFn) -> Lock:
    images = {}
    for name in draw(st.lists(_text, max_size=3, unique=True)):
        pkgs = draw(st.lists(_packages, max_size=4, unique_by=lambda p: (p.name, p.platforms, p.version)))
        pkgs.sort(key=lambda p: (p.name, p.platforms, p.version))
        images[name] = LockedImage(name=name, python=draw(st.none() | st.sampled_from(["3.10", "3.11", "3.12"])),
                                   platforms=draw(_plats), inputs=draw(_hashes), parent=draw(st.none() | _parents),
                                   packages=tuple(pkgs))
    return Lock(images=images)


@settings(max_examples=30, deadline=None)
@given(locks())
def test_what_is_written_reads_back_the_same(lock: Lock) -> None:
    text = lockfile.render(lock)
    assert lockfile.parse(PATH, text) == lock
    assert lockfile.render(lockfile.parse(PATH, text)) == text


@settings(max_examples=30, deadline=None)
@given(locks(), st.data())
def test_any_edit_is_rejected_with_a_location_or_reads_back_as_written(lock: Lock, data: st.DataObject) -> None:
    text = lockfile.render(lock)
    at = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3))
    edited = text[:at] + insert + text[at + data.draw(st.integers(0, 3)):]
    try:
        again = lockfile.parse(PATH, edited)
    except ConfigError as err:
        [d] = err.diagnostics
        assert d.location is not None and d.location.file == PATH and d.location.line >= 1
        assert d.hint is not None and "dockwright lock" in d.hint
    else:
        assert lockfile.render(again) == edited


@settings(max_examples=60, deadline=None)
@given(locks(), st.data())
def test_the_fast_reader_reads_what_tomllib_reads_or_leaves_it_to_tomllib(lock: Lock, data: st.DataObject) -> None:
    import tomllib

    text = lockfile.render(lock)
    assert lockfile._fast(text) == tomllib.loads(text)  # every text render writes takes the fast path
    at = data.draw(st.integers(0, len(text)))
    edited = text[:at] + data.draw(st.text(max_size=3)) + text[at + data.draw(st.integers(0, 3)):]
    fast = lockfile._fast(edited)
    if fast is not None:  # an edit it reads must read as tomllib reads it, or fail parse's render check
        try:
            same = fast == tomllib.loads(edited)
        except tomllib.TOMLDecodeError:
            same = False
        if not same:
            with pytest.raises(ConfigError):
                lockfile.parse(PATH, edited)


def test_a_bad_escape_in_a_quoted_key_is_tomllibs_located_error() -> None:
    """The fast reader leaves to tomllib every string json cannot read (it raised JSONDecodeError: a traceback;
    found by the test above)."""
    image = LockedImage(name="a\\b", python=None, platforms=("linux/amd64",), inputs=H, parent=None, packages=())
    text = lockfile.render(Lock(images={image.name: image})).replace('"a\\\\b"', '"a\\u00zz"')
    assert lockfile._fast(text) is None
    assert _error(text) == (
        "dockwright.lock:6:13: error: dockwright.lock is not valid TOML: Invalid hex value (run `dockwright lock` "
        "to write it again)\n    6 | [images.\"a\\u00zz\"]\n      |             ^")


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        lockfile.parse(PATH, text)
    return err.value.render()


SAMPLE = lockfile.render(Lock(images={"base": LockedImage(
    name="base", python="3.11", platforms=("linux/amd64",), inputs=H,
    parent=Parent(ref="python:3.11-slim", digest=H, platforms=(("linux/amd64", H),)),
    packages=(Package(name="alpha", version="1.0", via=("alpha",),
                      files=(File("alpha-1.0-py3-none-any.whl", H, 7),)),))}))


def test_the_sample_reads_like_this() -> None:
    body = (
        "\n[images.base]\npython = \"3.11\"\nplatforms = [\"linux/amd64\"]\n"
        f"inputs = \"{H}\"\n\n"
        f"[images.base.parent]\nref = \"python:3.11-slim\"\ndigest = \"{H}\"\n\n"
        f"[images.base.parent.platforms]\n\"linux/amd64\" = \"{H}\"\n\n"
        "[[images.base.packages]]\nname = \"alpha\"\nversion = \"1.0\"\nvia = [\"alpha\"]\nfiles = [\n"
        f"    {{ name = \"alpha-1.0-py3-none-any.whl\", hash = \"{H}\", size = 7 }},\n]\n")
    checksum = "sha256:" + hashlib.sha256(body.encode()).hexdigest()  # of everything below its line
    assert SAMPLE == (
        "# Written by `dockwright lock`: every Python package (with hashes) and parent image (by digest).\n"
        "# Do not edit by hand; run `dockwright lock` to change it.\n"
        f"version = 1\nchecksum = \"{checksum}\"\n{body}")


def test_malformed_toml_is_located() -> None:
    text = SAMPLE.replace('version = "1.0"', 'version = "1.0')
    line = text.splitlines().index('version = "1.0') + 1
    assert _error(text).splitlines()[0] == (
        f"dockwright.lock:{line}:15: error: dockwright.lock is not valid TOML: Illegal character '\\n' "
        "(run `dockwright lock` to write it again)")


def test_a_hand_edit_is_located_at_its_line() -> None:
    text = SAMPLE.replace("size = 7", "size = 8").replace("\n\n[[images", "\n[[images")
    line = SAMPLE.splitlines().index("[[images.base.packages]]")
    assert _error(text).splitlines()[0] == (
        f"dockwright.lock:{line}:1: error: dockwright.lock was edited by hand: line {line} is not what dockwright "
        "writes (run `dockwright lock` to write it again)")


def test_a_bad_hash_is_located_at_its_value() -> None:
    text = SAMPLE.replace(f'hash = "{H}"', 'hash = "md5:00"')
    assert _error(text).splitlines()[0] == (
        "dockwright.lock:23:44: error: dockwright.lock: image 'base': package 'alpha': a file: 'hash' is missing or "
        "not valid (run `dockwright lock` to write it again)")
    text = SAMPLE.replace('python = "3.11"', 'python = "three"')
    assert _error(text).splitlines()[:2] == [
        "dockwright.lock:7:1: error: dockwright.lock: image 'base': 'python' is missing or not valid (run "
        "`dockwright lock` to write it again)",
        '    7 | python = "three"']


@pytest.mark.parametrize(("text", "message"), [
    ("version = 2\n", "dockwright.lock:1:1: error: dockwright.lock has format version 2, newer than this dockwright "
                      "reads (1) (upgrade dockwright, or remove it and run `dockwright lock` to write it in this version's "
                      "format)"),
    ("version = 0\n", "dockwright.lock:1:1: error: dockwright.lock has unknown format version 0 (run `dockwright "
                      "lock` to write it again)"),
    ("images = 3\n", "dockwright.lock:1:1: error: dockwright.lock has no format version (run `dockwright lock` to "
                     "write it again)"),
    ("version = 1\nextra = 1\n", "dockwright.lock:2:1: error: dockwright.lock: unknown key 'extra' "
                                 "(run `dockwright lock` to write it again)"),
])
def test_versions_and_unknown_keys(text: str, message: str) -> None:
    assert _error(text).splitlines()[0] == message


def test_a_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "dockwright.lock"
    path.write_bytes(b"version = 1\n\xff\n")
    with pytest.raises(ConfigError) as err:
        lockfile.read(path)
    assert err.value.diagnostics[0].message == "dockwright.lock is not UTF-8 text"
    assert err.value.diagnostics[0].location is not None and err.value.diagnostics[0].location.line == 2
    assert lockfile.read(tmp_path / "none.lock") is None


_ONE = Lock(images={"a": LockedImage(name="a", python=None, platforms=("linux/amd64",), inputs=H, parent=None,
                                     packages=(Package(name="p", version="1", via=("x",),
                                                       files=(File(name="f", hash=H, size=None),)),))})


@pytest.mark.parametrize("old, new, where", [
    ('[images.a]', '[images."\\q"]', "6:12"),  # a quoted image name
    ('via = ["x"]', 'via = ["\\q"]', "13:11"),  # a list of strings
    ('name = "f"', 'name = "\\q"', "15:17"),  # a file's line
])
def test_an_escape_json_does_not_know_is_located(old: str, new: str, where: str) -> None:
    """The fast reader decodes strings with json; an escape TOML and JSON refuse (`\\q`) falls back to
    tomllib, which locates it: one error, never a traceback (found by the edit property above)."""
    text = lockfile.render(_ONE)
    assert old in text
    assert _error(text.replace(old, new)).splitlines()[0] == (
        f"dockwright.lock:{where}: error: dockwright.lock is not valid TOML: Unescaped '\\' in a string "
        "(run `dockwright lock` to write it again)")


@st.composite
def layered_locks(draw: st.DrawFn) -> Lock:
    """Images that repeat the same package blocks, as a layered image's entry repeats its parent's, and blocks
    that differ from one of those only in a later line (another file or via)."""
    key = lambda p: (p.name, p.platforms, p.version)  # noqa: E731
    shared = draw(st.lists(_packages, min_size=1, max_size=3, unique_by=key))
    images = {}
    for name in draw(st.lists(_text, min_size=2, max_size=4, unique=True)):
        near = [replace(p, files=draw(st.lists(_files, min_size=1, max_size=2).map(tuple)),
                        via=draw(st.sampled_from([p.via, (*p.via, "x")])))
                for p in draw(st.lists(st.sampled_from(shared), max_size=1))]
        pkgs = {key(p): p for p in shared + near + draw(st.lists(_packages, max_size=2))}
        images[name] = LockedImage(name=name, python=None, platforms=draw(_plats), inputs=draw(_hashes),
                                   parent=None, packages=tuple(pkgs[k] for k in sorted(pkgs)))
    return Lock(images=images)


def _outcome(text: str) -> Lock | str:
    try:
        return lockfile.parse(PATH, text)
    except ConfigError:
        return "error"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lock=layered_locks(), data=st.data())
def test_repeated_package_blocks_read_as_tomllib_reads_them_whatever_the_edit(monkeypatch: pytest.MonkeyPatch,
                                                                              lock: Lock, data: st.DataObject) -> None:
    """The fast reader reads a package block that repeats one read before as that block's table again: after
    any edit, parse gives what it gives reading the text with tomllib (the same lock, or an error)."""
    text = lockfile.render(lock)
    assert lockfile.parse(PATH, text) == lock
    at = data.draw(st.integers(0, len(text)))
    edited = text[:at] + data.draw(st.text(max_size=3)) + text[at + data.draw(st.integers(0, 3)):]
    fast = _outcome(edited)
    with monkeypatch.context() as m:
        m.setattr(lockfile, "_fast", lambda text: None)
        assert fast == _outcome(edited)


def test_an_edit_that_keeps_the_shape_is_found_by_the_checksum() -> None:
    """A pin changed by hand in dockwright's own shape (the version and the file's name; the hash left as it
    was, or changed too): the checksum below the version no longer matches what the file says."""
    edits = [[('version = "1.0"', 'version = "1.1"'), ("alpha-1.0-py3", "alpha-1.1-py3")],
             [('size = 7 }', 'size = 8 }')], [('python = "3.11"', 'python = "3.12"')],
             [('platforms = ["linux/amd64"]\ninputs', 'platforms = ["linux/arm64"]\ninputs')]]
    for edit in edits:
        text = SAMPLE
        for a, b in edit:
            assert a in text
            text = text.replace(a, b)
        assert _error(text).splitlines() == [
            "dockwright.lock:4:1: error: dockwright.lock was edited by hand: its checksum is not that of what it says "
            "(undo the edit, or run `dockwright lock` to write it anew from the YAML)",
            f"    4 | {SAMPLE.splitlines()[3]}", "      | ^"]


def test_a_lock_written_before_the_checksum_reads_as_it_is() -> None:
    """dockwright wrote no checksum before; such a lock reads as it did, and the next `lock` adds one."""
    old = SAMPLE.replace(SAMPLE.splitlines()[3] + "\n", "")
    assert lockfile.render(lockfile.parse(PATH, old), checksum=False) == old
    assert lockfile.render(lockfile.parse(PATH, old)) == SAMPLE


@settings(max_examples=150, deadline=None)
@given(locks(), st.data())
def test_an_edit_is_an_error_or_changes_nothing(lock: Lock, data: st.DataObject) -> None:
    """Any edit of a written lock (characters replaced, inserted or removed anywhere) is a located error, or
    reads back exactly the lock that was written (the checksum's line removed whole, say): never other pins."""
    text = lockfile.render(lock)
    at = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.text(alphabet=st.sampled_from('0123456789abcdef."= \n[],'), max_size=3))
    edited = text[:at] + insert + text[at + data.draw(st.integers(0, 3)):]
    try:
        read = lockfile.parse(PATH, edited)
    except ConfigError:
        return
    assert read == lock
