"""compile --watch, for real: a separate process, files changed under it, Ctrl-C (SIGINT) to end it."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from helpers import EXAMPLES


class Lines:
    """The lines a stream prints, read by a thread, waited for with a time-out."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))

    def wait_for(self, wanted: str, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if wanted in line:
                return
        raise AssertionError(f"no line with {wanted!r}; saw {self.seen!r}")

    def rest(self) -> list[str]:
        time.sleep(0.3)
        while not self.queue.empty():
            self.seen.append(self.queue.get())
        return self.seen


def test_watch_recompiles_on_every_change_and_ends_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    root = tmp_path / "q"
    shutil.copytree(EXAMPLES / "quickstart", root)
    (root / "dockwright.lock").unlink()  # the watch changes a pinned requirement: unlocked, that is a recompile
    subprocess.run([sys.executable, "-m", "compiler", "-q", "compile"], cwd=root, check=True, timeout=60)
    project = root / "dockwright.yaml"
    dockerfile = root / "generated" / "images" / "base" / "Dockerfile"
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "compile", "--watch"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Lines(proc.stdout), Lines(proc.stderr)  # type: ignore[arg-type]
    try:
        out.wait_for("generated/: 0 created, 0 updated, 3 unchanged, 0 removed")

        project.write_text(project.read_text().replace("pyyaml==6.0.2", "pyyaml==6.0.1"))
        out.wait_for("generated/: 0 created, 3 updated, 0 unchanged, 0 removed")
        assert "pyyaml==6.0.1" in (root / "generated" / "images" / "base" / "requirements.txt").read_text()

        # A referenced file: a certificate removed is an error, printed without ending the watch.
        cert = root / "certs" / "proxy-ca.pem"
        saved = cert.read_bytes()
        cert.unlink()
        err.wait_for("1 error; nothing was written")
        assert any("error: certificate 'certs/proxy-ca.pem' does not exist" in line for line in err.seen)
        assert proc.poll() is None
        cert.write_bytes(saved)
        out.wait_for("generated/: 0 created, 0 updated, 3 unchanged, 0 removed")

        text = dockerfile.read_text()
        project.write_text(project.read_text().replace("workdir: /app", "workdir: /srv"))
        out.wait_for("generated/: 0 created, 2 updated, 1 unchanged, 0 removed")  # Dockerfile, manifest
        assert dockerfile.read_text() != text and "WORKDIR /srv" in dockerfile.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
    assert not any("Traceback" in line for line in err.rest()), err.seen


def test_watch_does_not_go_with_check(tmp_path: Path) -> None:
    root = tmp_path / "q"
    shutil.copytree(EXAMPLES / "quickstart", root)
    done = subprocess.run([sys.executable, "-m", "compiler", "compile", "--watch", "--check"], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", "error: --watch writes the output; it does not go with --check\n")


def test_a_watch_round_leaves_no_garbage_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process runs without the cyclic collector (a one-shot compile only pays for it), so a watch that
    compiles for hours must collect after each round, or every compile's cycles stay."""
    import gc

    from compiler import cli

    root = tmp_path / "q"
    shutil.copytree(EXAMPLES / "quickstart", root)
    monkeypatch.chdir(root)
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            seen = cli._watch_once(root / "dockwright.yaml")
            assert seen and gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("name", sorted(__import__("test_fastpath").LINKS))
def test_the_watch_notices_a_path_swapped_for_a_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     name: str) -> None:
    """Every path a compile reads or looks at, and every folder on the way to one, replaced by a link to an
    identical copy outside the project (which compile refuses) or inside it: the watch compiles again, as it
    does for any change (the same table as the fast path's, tests/test_fastpath.py)."""
    from compiler import cli
    from test_fastpath import LINKS, _linked_project

    root = _linked_project(tmp_path / "p")
    monkeypatch.chdir(root)
    path = root / "dockwright.yaml"
    seen = cli._watch_once(path)
    assert cli._watched(path, seen) == seen  # nothing changed: the watch waits
    LINKS[name](root)
    assert cli._watched(path, seen) != seen
