"""Promise 1: the same project gives byte-identical output in any directory, under any install path,
at any time, whatever the host's environment variables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers import EXAMPLES, ROOT, tree

EXAMPLE = EXAMPLES / "ml-training"


def compile_copy(dest: Path, *, python: str = sys.executable, env: dict[str, str] | None = None,
                 cwd: Path | None = None, inherit: bool = True) -> dict[str, bytes]:
    """Compile a copy of the example at dest; env adds to this process's environment (or is the whole of it)."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("generated"))
    full = {**(os.environ if inherit else {}), **(env or {})}
    result = subprocess.run([python, "-m", "compiler", "-f", str(dest / "dockwright.yaml"), "compile"],
                            cwd=cwd or dest, env=full, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return tree(dest / "generated")


def test_same_output_in_two_directories_and_hosts(tmp_path: Path) -> None:
    a = compile_copy(tmp_path / "a")
    b = compile_copy(tmp_path / "deeper" / "other name" / "b",
                     env={"TZ": "Asia/Tokyo", "LANG": "C", "LC_ALL": "C", "HOME": str(tmp_path),
                          "PYTHONHASHSEED": "12345", "USER": "someone-else", "SOURCE_DATE_EPOCH": "0"},
                     cwd=tmp_path)
    assert a == b == tree(EXAMPLE / "generated")
    for data in a.values():
        assert str(tmp_path).encode() not in data


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    return next(out.glob("dockwright-*.whl"))


def _constraints(folder: Path) -> Path:
    """This environment's versions of every distribution, dockwright aside: the plain venv gets the same ones."""
    import sysconfig
    from importlib import metadata

    # Only the environment's own site-packages: other tests put folders on sys.path (ZenML projects they
    # import) whose distributions would pin a name twice.
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    pins = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions(path=site)
                   if d.metadata["Name"] and d.metadata["Name"].lower() != "dockwright"})
    path = folder / "constraints.txt"
    path.write_text("".join(f"{pin}\n" for pin in pins), encoding="utf-8")
    return path


@pytest.mark.slow
def test_installed_wheel_ships_schemas_and_templates_and_agrees(wheel: Path, tmp_path: Path) -> None:
    """The wheel and its declared dependencies, installed by pip into plain venvs (no site-packages but their
    own, no PATH but their own bin/): it imports from there, and compiles the same bytes from two places."""
    constraints = _constraints(tmp_path)
    outputs = []
    for place in ("one/env", "two/deeper/env"):
        target = tmp_path / place
        venv.EnvBuilder(system_site_packages=False, with_pip=False).create(target)
        python = str(target / "bin" / "python")
        installed = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--timeout", "60",
                                    "--retries", "10", "-c", str(constraints), str(wheel)], capture_output=True, text=True)
        assert installed.returncode == 0, installed.stderr
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(PATH=f"{target / 'bin'}{os.pathsep}{os.defpath}", VIRTUAL_ENV=str(target))
        where = subprocess.run([python, "-c", "import compiler, yaml; print(compiler.__file__, yaml.__file__)"],
                               check=True, capture_output=True, text=True, cwd=tmp_path, env=env).stdout.split()
        assert all(path.startswith(str(target)) for path in where), where
        unrelated = tmp_path / f"cwd-{len(outputs)}"
        unrelated.mkdir()
        outputs.append(compile_copy(tmp_path / f"project-{len(outputs)}", python=python, cwd=unrelated, env=env,
                                    inherit=False))
    assert outputs[0] == outputs[1] == tree(EXAMPLE / "generated")
