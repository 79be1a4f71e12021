"""bench/bench.py uses only what compiler/ makes public, and leaves nothing behind, even when stopped."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import EXAMPLES, ROOT

from compiler.driver import STAGES, compile_project

BENCH = ROOT / "bench" / "bench.py"


def test_bench_imports_no_private_name_of_the_compiler() -> None:
    private = []
    for node in ast.walk(ast.parse(BENCH.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("compiler"):
            private += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            private += [node.module for part in (node.module or "").split(".") if part.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and isinstance(node.value, ast.Name) and node.value.id in {"emit", "graph", "render", "schema",
                                                                            "locking", "pipeline", "plan"}:
            private.append(f"{node.value.id}.{node.attr}")
    assert private == []


def test_compile_project_times_each_stage() -> None:
    timings: dict[str, float] = {}
    compiled = compile_project(EXAMPLES / "quickstart" / "dockwright.yaml", timings=timings)
    assert list(timings) == list(STAGES) and all(t >= 0 for t in timings.values())
    assert compile_project(EXAMPLES / "quickstart" / "dockwright.yaml").files == compiled.files


def test_bench_removes_its_folders_when_stopped(tmp_path: Path) -> None:
    # Both signals in one test, one after the other: bench.py's scratch folders share bench/out/, which
    # this test compares before and after, so two runs at once (pytest-xdist's workers) would see each other's.
    for how in (signal.SIGINT, signal.SIGTERM):
        _stopped(tmp_path / how.name, how)


def _stopped(folder: Path, how: signal.Signals) -> None:
    folder.mkdir()
    out = ROOT / "bench" / "out"
    before = set(out.iterdir()) if out.is_dir() else set()
    kept = folder / "kept"
    proc = subprocess.Popen([sys.executable, str(BENCH), "--runs", "50", "--out", str(kept)], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # Stopped while it times whole compiles: the project is written and the fast path's records are being made.
    while not (kept / "generated" / "manifest.json").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.splitlines()[-1:]) == (130, ["bench: interrupted (its temporary folders are removed)"]), how
    after = set(out.iterdir()) if out.is_dir() else set()
    assert after == before  # its scratch folder (records, quickstart copy) is gone
    assert (kept / "dockwright.yaml").is_file()  # --out: the project is the user's, and stays
    assert sorted(os.listdir(folder)) == ["kept"]  # nothing beside it (no cache/, no quickstart/)
