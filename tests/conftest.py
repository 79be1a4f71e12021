"""Fixtures shared by every test folder, and how much hypothesis runs."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# A test run started in the background by a shell without job control (`python -m pytest ... &`, a CI
# script's background step) inherits SIGINT ignored, as would every process a test starts (an ignored signal
# stays ignored across exec): the tests that end a process with Ctrl-C (SIGINT) would wait for it in vain.
# With Python's handler here, what the tests start gets the default action, and Python its KeyboardInterrupt.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The compile fast path's records (compiler/fastpath.py) of this test run: never the user's own cache.
os.environ["DOCKWRIGHT_CACHE_DIR"] = tempfile.mkdtemp(prefix="dockwright-test-cache-")

# How long one example or its generation takes depends on the machine's load (a shared machine, pytest-xdist's
# workers), not on the code: no per-example deadline, no too-slow health check. A test's own @settings keeps
# these unless it says otherwise (this profile is the default they start from); bounds on time that the
# project promises are tests of their own (tests/test_limits.py).
settings.register_profile("dockwright", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dockwright")

# Each property test names its own max_examples, and a whole run (no marker expression: what CI runs) runs
# exactly that many. The quick loop (a marker expression that leaves the slow tests out, as
# `-m "not builder and not slow"` does) runs a tenth, at least 10; DOCKWRIGHT_FULL=1 runs them all there too.
QUICK_SHARE, QUICK_MINIMUM = 10, 10


def quick_examples(n: int) -> int:
    return n if n <= QUICK_MINIMUM else max(QUICK_MINIMUM, n // QUICK_SHARE)


def full_examples(config: pytest.Config) -> bool:
    if os.environ.get("DOCKWRIGHT_FULL") == "1":
        return True
    return "not slow" not in " ".join(str(config.getoption("markexpr") or "").split())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if full_examples(config):
        return
    for item in items:
        test = getattr(item, "obj", None)
        # hypothesis has no public way to scale a test's own @settings; this is what @settings stores on @given's wrapper
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if own is None or getattr(test, "_dockwright_quick", False):
            continue
        test._hypothesis_internal_use_settings = settings(own, max_examples=quick_examples(own.max_examples))
        test._dockwright_quick = True


def pytest_report_header(config: pytest.Config) -> str:
    return ("hypothesis: every test's own max_examples" if full_examples(config) else
            f"hypothesis: a {QUICK_SHARE}th of each test's max_examples (the quick loop; DOCKWRIGHT_FULL=1 runs them all)")


@pytest.fixture
def project(tmp_path: Path):
    """Write a project from {relative path: text} and return its folder."""

    def make(files: dict[str, str]) -> Path:
        for rel, text in files.items():
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return tmp_path

    return make


@pytest.fixture
def mounted() -> Iterator[Callable[..., None]]:
    """mount(args..., target): a mount that is undone after the test (the tests run as root): a read-only or full
    file system under an output or export folder."""
    done: list[Path] = []

    def mount(*args: str) -> None:
        subprocess.run(["mount", *args], check=True, capture_output=True)
        done.append(Path(args[-1]))

    yield mount
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], check=False)
