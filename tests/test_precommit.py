"""The repository's pre-commit hooks, run for real by pre-commit against a throwaway git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from helpers import EXAMPLES, ROOT

# pre-commit installs the hooks' environment once per version of this repository; keep it between runs.
CACHE = Path.home() / ".cache" / "dockwright-test" / "pre-commit"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _try_repo(repo: Path, hook: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(CACHE), "NO_COLOR": "1"}
    return subprocess.run(["pre-commit", "try-repo", str(ROOT), hook, "--all-files", "--color", "never"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=900)


def test_check_and_validate_hooks(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "quickstart", repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "start")

    fresh = _try_repo(repo, "dockwright-check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "dockwright compile --check" in fresh.stdout and "Passed" in fresh.stdout

    project = repo / "dockwright.yaml"
    project.write_text(project.read_text().replace("PYTHONUNBUFFERED: 1", "PYTHONUNBUFFERED: 0"))
    stale = _try_repo(repo, "dockwright-check")
    assert stale.returncode == 1
    assert "stale: generated/images/base/Dockerfile" in stale.stdout
    assert "generated/ is out of date" in stale.stdout

    # A requirement changed without `dockwright lock`: the example is locked, so the check says that.
    project.write_text(project.read_text().replace("pyyaml==6.0.2", "pyyaml==6.0.1"))
    unlocked = _try_repo(repo, "dockwright-check")
    assert unlocked.returncode == 1
    assert ("dockwright.yaml:6:3: error: environment 'base' has changed since dockwright.lock was written (or is "
            "not in it) (run `dockwright lock`, then compile again)") in unlocked.stdout

    project.write_text(project.read_text().replace("requirements:", "requirments:"))
    invalid = _try_repo(repo, "dockwright-validate")
    assert invalid.returncode == 1
    assert ("dockwright.yaml:9:5: error: unknown key 'requirments' in environment 'base' "
            "(did you mean 'requirements'?)") in invalid.stdout
