"""Jinja2's compiled templates are kept in the user's cache folder (render._CompiledTemplates): a compile with
the entries uses them instead of compiling the templates, and the output is the same bytes with them, without
them, with damaged ones, and when the folder cannot be written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import EXAMPLES

from compiler import render

# Renders the quickstart example; prints whether Jinja2 compiled a template and a digest of every file.
_RUN = """
import hashlib, json, sys
from pathlib import Path
import jinja2
compiled = []
original = jinja2.Environment.compile
jinja2.Environment.compile = lambda self, *a, **k: compiled.append(1) or original(self, *a, **k)
from compiler.driver import compile_project
files = compile_project(Path(sys.argv[1])).files
print(json.dumps([bool(compiled), hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()]))
"""


def _render(cache: Path | None) -> tuple[bool, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKWRIGHT_CACHE_DIR", "DOCKWRIGHT_NO_CACHE")}
    env.update({"DOCKWRIGHT_CACHE_DIR": str(cache)} if cache is not None else {"DOCKWRIGHT_NO_CACHE": "1"})
    out = subprocess.run([sys.executable, "-c", _RUN, str(EXAMPLES / "platform" / "dockwright.yaml")], env=env,
                         capture_output=True, text=True, check=True)
    compiled, digest = json.loads(out.stdout)
    return compiled, digest


def test_compiled_templates_are_kept_used_and_change_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    compiled, plain = _render(None)
    assert compiled and not cache.exists()  # DOCKWRIGHT_NO_CACHE: nothing kept
    assert _render(cache) == (True, plain)
    entries = sorted(cache.glob("template-*"))
    assert len(entries) == 2  # Dockerfile.j2, requirements.txt.j2
    assert _render(cache) == (False, plain)  # both from the cache
    for entry in entries:  # damaged: compiled again, and written again
        entry.write_bytes(entry.read_bytes()[:-7] + b"damaged")
    assert _render(cache) == (True, plain)
    assert _render(cache) == (False, plain)


def test_a_cache_folder_that_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _, plain = _render(None)
    assert _render(blocker) == (True, plain)
    assert _render(blocker / "below") == (True, plain)


_ENV = jinja2.Environment()
_CODE = compile("x = 1\n", "<template>", "exec")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=4), st.booleans())
def test_an_entry_gives_the_code_it_was_written_with_or_nothing(tmp_path_factory: pytest.TempPathFactory, at: int, junk: bytes,
                                                                truncate: bool) -> None:
    folder = tmp_path_factory.mktemp("entries")
    store = render._CompiledTemplates(str(folder))
    bucket = jinja2.bccache.Bucket(_ENV, "key", "checksum")
    bucket.code = _CODE
    store.dump_bytecode(bucket)
    (entry,) = folder.iterdir()
    data = entry.read_bytes()
    at %= len(data)
    entry.write_bytes(data[:at] if truncate else data[:at] + junk + data[at + len(junk):])
    again = jinja2.bccache.Bucket(_ENV, "key", "checksum")
    store.load_bytecode(again)
    assert again.code is None or again.code == _CODE
    other = jinja2.bccache.Bucket(_ENV, "key", "another checksum")  # another template text: never this entry
    store.load_bytecode(other)
    assert other.code is None


def test_an_intact_entry_that_holds_no_code_is_not_used(tmp_path: Path) -> None:
    """An entry whose digest matches but that holds something else than code (not written by dockwright)."""
    import hashlib
    import marshal

    store = render._CompiledTemplates(str(tmp_path))
    bucket = jinja2.bccache.Bucket(_ENV, "key", "checksum")
    bucket.code = _CODE
    store.dump_bytecode(bucket)
    (entry,) = tmp_path.iterdir()
    payload = marshal.dumps(["not", "code"])
    entry.write_bytes(marshal.dumps((hashlib.sha256(payload).hexdigest(), payload)))
    again = jinja2.bccache.Bucket(_ENV, "key", "checksum")
    store.load_bytecode(again)
    assert again.code is None
