"""The repository's pre-commit hooks, run for real by pre-commit against a throwaway git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import EXAMPLES, ROOT, tool

# pre-commit installs the hooks' environment once per version of this repository; keep it between runs.
CACHE = Path.home() / ".cache" / "dockwright-test" / "pre-commit"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _try_repo(repo: Path, hook: str, *, all_files: bool = True) -> subprocess.CompletedProcess[str]:
    """The hook run by pre-commit on every file of repo, or (all_files False) on what is staged, as at a commit."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(CACHE), "NO_COLOR": "1"}
    which = ["--all-files"] if all_files else []
    return subprocess.run([tool("pre-commit"), "try-repo", str(ROOT), hook, *which, "--color", "never"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
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


@pytest.mark.slow
def test_lock_check_hook_is_offline_and_fails_on_a_stale_lock(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    project = repo / "dockwright.yaml"
    project.write_text("version: 1\nproject: lk\nenvironments:\n  base:\n    dockerfile: Dockerfile\n"
                       "runner: {environment: base}\n")
    # An image with no requirements and a custom parent: `lock` needs neither uv nor a registry.
    made = subprocess.run([tool("dockwright"), "lock"], cwd=repo, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "start")

    fresh = _try_repo(repo, "dockwright-lock-check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "dockwright lock --check --offline" in fresh.stdout and "Passed" in fresh.stdout

    project.write_text(project.read_text().replace("base", "main"))
    stale = _try_repo(repo, "dockwright-lock-check")
    assert stale.returncode == 1
    assert ("would change: main: not locked\nwould change: base: no longer an image\n"
            "dockwright.lock is out of date; run 'dockwright lock'") in stale.stdout

    (repo / "dockwright.lock").unlink()
    missing = _try_repo(repo, "dockwright-lock-check")
    assert missing.returncode == 1 and "dockwright.lock does not exist; run 'dockwright lock'" in missing.stdout


@pytest.mark.slow
def test_hooks_run_on_a_commit_that_only_deletes_or_links_a_file(tmp_path: Path) -> None:
    """pre-commit passes no deleted file and no link to a hook's `files` pattern: each hook runs on every commit,
    so a commit that only deletes a certificate, or replaces a requirements file by a link out of the project,
    fails as the command fails (the hooks had `files` patterns and skipped it: "(no files to check)")."""
    repo = tmp_path / "proj"
    shutil.copytree(EXAMPLES / "quickstart", repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "start")

    _git(repo, "rm", "-q", "certs/proxy-ca.pem")
    for hook in ("dockwright-validate", "dockwright-lock-check", "dockwright-check"):
        deleted = _try_repo(repo, hook, all_files=False)
        assert deleted.returncode == 1, (hook, deleted.stdout)
        assert "error: certificate 'certs/proxy-ca.pem' does not exist" in deleted.stdout, (hook, deleted.stdout)
        assert "no files to check" not in deleted.stdout

    _git(repo, "reset", "-q", "--hard")
    elsewhere = tmp_path / "proxy-ca.pem"
    (repo / "certs/proxy-ca.pem").rename(elsewhere)
    (repo / "certs/proxy-ca.pem").symlink_to(elsewhere)  # the same bytes, outside the project
    _git(repo, "add", "-A")
    for hook in ("dockwright-validate", "dockwright-lock-check", "dockwright-check"):
        linked = _try_repo(repo, hook, all_files=False)
        assert linked.returncode == 1, (hook, linked.stdout)
        assert ("error: certificate 'certs/proxy-ca.pem' leads outside the project directory through a symbolic link"
                in linked.stdout), (hook, linked.stdout)
