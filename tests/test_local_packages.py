"""`local_packages`: merged and layered like `copy`, installed after the requirements, checked at compile time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from compiler.errors import ConfigError
from compiler.driver import compile_project
from helpers import invoke, tree

PYPROJECT = "[project]\nname = 'x'\nversion = '1'\n"
PACKAGES = {"pyproject.toml": PYPROJECT, "libs/a/pyproject.toml": PYPROJECT, "libs/b/setup.py": "",
            "libs/c/setup.cfg": "", "libs/a/a/__init__.py": "VERSION = 1\n", "src/main.py": ""}


def compiled(project, body: str, files: dict[str, str] | None = None):
    root = project({"dockwright.yaml": "version: 1\nproject: t\n" + body, **PACKAGES, **(files or {})})
    return compile_project(Path(root) / "dockwright.yaml")


def lines(text: str, *needles: str) -> list[int]:
    """The index of the first line holding each needle."""
    found = []
    for needle in needles:
        found.append(next(i for i, line in enumerate(text.splitlines()) if needle in line))
    return found


def test_packages_append_like_copy_through_extends_integrations_and_settings(project) -> None:
    c = compiled(project, """environments:
  parent: {python: "3.11", local_packages: [libs/a]}
  child: {extends: parent, local_packages: ["./libs/a/", ., libs/b]}
runner: {environment: child}
pipelines:
  p:
    environment: child
    steps: {s: {settings: {local_packages: [libs/b, libs/c]}}}
""")
    envs = c.plan.environments
    assert [p.value for p in envs["child"].local_packages] == ["libs/a", ".", "libs/b"]
    assert [p.origin.via for p in envs["child"].local_packages] == [("extends parent",), (), ()]
    assert [p.value for p in envs["p.s"].local_packages] == ["libs/a", ".", "libs/b", "libs/c"]
    assert [p.origin.via for p in envs["p.s"].local_packages] == [
        ("environment child", "extends parent"), ("environment child",), ("environment child",), ()]
    # Layered: each image installs only the packages its parent does not have.
    assert c.plan.images["child"].spec.local_packages == (
        (".", "/opt/dockwright/local/"), ("libs/b/", "/opt/dockwright/local/libs/b/"))
    assert c.plan.images["p.s"].spec.local_packages == (("libs/c/", "/opt/dockwright/local/libs/c/"),)


def test_packages_install_after_requirements_and_run_with_the_same_installer_and_index(project) -> None:
    c = compiled(project, """environments:
  base:
    python: "3.11"
    index_url: https://m.example/simple
    installer_args: [--pre]
    requirements: [pandas==2.2.2]
    local_packages: ["libs/a"]
    run: [echo hi]
    user: app
    workdir: /app
    copy: [src/]
  fast: {extends: base, installer: uv}
runner: {environment: base}
server: {environment: fast}
""")
    text = c.files["images/base/Dockerfile"]
    order = lines(text, "-r /opt/dockwright/requirements.txt", "RUN echo hi", "COPY libs/a/ /opt/dockwright/local/libs/a/",
                  "/opt/dockwright/local/libs/a/ \\", "&& rm -rf /opt/dockwright/local", "useradd", "USER app",
                  "COPY --chown=app src/")
    assert order == sorted(order), text
    assert ("RUN python -m pip install --no-cache-dir --disable-pip-version-check --index-url https://m.example/simple"
            " --pre /opt/dockwright/local/libs/a/ \\\n && rm -rf /opt/dockwright/local\n") in text
    uv = c.files["images/fast/Dockerfile"]
    assert ("&& /opt/dockwright/uv/bin/uv pip install --python /opt/venv/bin/python --no-cache --index-url "
            "https://m.example/simple --pre /opt/dockwright/local/libs/a/ \\\n && rm -rf /opt/dockwright/local\n") in uv
    # The package's directory is an input of the image (its files feed the build key), not part of the tag.
    assert c.manifest.images["base"].inputs == (
        "generated/images/base/Dockerfile", "generated/images/base/requirements.txt", "libs/a/", "src/")


def test_packages_alone_get_the_venv_and_the_index_flags(project) -> None:
    c = compiled(project, """environments:
  plain: {parent_image: "debian:bookworm-20240904-slim", index_url: "https://m.example/simple"}
  pkg: {extends: plain, local_packages: [.]}
runner: {environment: pkg}
""")
    spec = c.plan.images["pkg"].spec
    assert spec.layered and spec.python_setup and spec.requirements == ()
    assert spec.index_url == "https://m.example/simple"
    text = c.files["images/pkg/Dockerfile"]
    assert "python3 -m venv --system-site-packages /opt/venv" in text
    assert "COPY . /opt/dockwright/local/\n" in text
    assert "images/pkg/requirements.txt" not in c.files
    assert c.manifest.images["pkg"].inputs == ("generated/images/pkg/Dockerfile", ".")


def test_a_child_repeating_its_parents_packages_is_its_parents_image(project) -> None:
    c = compiled(project, """environments:
  parent: {python: "3.11", local_packages: [libs/a, .]}
  child: {extends: parent, local_packages: [., ./libs/a]}
runner: {environment: child}
""")
    assert c.plan.env_image["child"] == "parent"


def test_a_code_change_changes_no_output(project) -> None:
    body = """environments:
  base: {python: "3.11", requirements: [pandas==2.2.2], local_packages: [libs/a, .]}
runner: {environment: base}
"""
    first = compiled(project, body)
    again = compiled(project, body, {"libs/a/a/__init__.py": "VERSION = 2\n", "libs/a/a/new.py": "",
                                     "pyproject.toml": PYPROJECT + "# changed\n"})
    assert again.files == first.files


def test_package_paths_are_checked_where_they_are_written(project) -> None:
    line = '  base: {python: "3.11", local_packages: [missing, libs/a/pyproject.toml, src, libs/a, ./libs/a]}'
    with pytest.raises(ConfigError) as info:
        compiled(project, f"environments:\n{line}\nrunner: {{environment: base}}\n")
    got = [(d.location.line, d.location.col, d.message, d.hint) for d in info.value.diagnostics]
    assert got == [
        (4, line.index("missing") + 1, "local package 'missing' does not exist",
         "paths are relative to the directory of dockwright.yaml"),
        (4, line.index("libs/a/pyproject.toml") + 1, "local package 'libs/a/pyproject.toml' is not a directory",
         "name the directory that holds the package's pyproject.toml, like libs/featurelib"),
        (4, line.index("src") + 1, "local package 'src' has no pyproject.toml, setup.py or setup.cfg",
         "name the directory pip would install, the one that holds the package's pyproject.toml"),
        (4, line.index("./libs/a") + 1, "local package 'libs/a' is listed twice in environment 'base'",
         "first at line 4; keep one"),
    ]


def test_a_symlink_out_of_the_project_is_refused_and_one_inside_is_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "pkg").mkdir(parents=True)
    (outside / "pkg/pyproject.toml").write_text(PYPROJECT)
    root = tmp_path / "project"
    (root / "libs/real").mkdir(parents=True)
    (root / "libs/real/pyproject.toml").write_text(PYPROJECT)
    os.symlink(outside / "pkg", root / "libs/away")
    os.symlink("real", root / "libs/here")
    (root / "dockwright.yaml").write_text("""version: 1
project: t
environments:
  base: {python: "3.11", local_packages: [libs/here, libs/away]}
runner: {environment: base}
""")
    result = invoke("compile", cwd=root, env={"NO_COLOR": "1"})
    assert result.returncode == 1
    assert result.stderr == (
        "dockwright.yaml:4:54: error: local package 'libs/away' reaches outside the project directory (keep the "
        "package under the directory of dockwright.yaml; the build context holds nothing else)\n"
        "    4 |   base: {python: \"3.11\", local_packages: [libs/here, libs/away]}\n"
        "      |                                                      ^\n"
        "1 error; nothing was written\n")
    assert not (root / "generated").exists()
    (root / "libs/away").unlink()
    (root / "dockwright.yaml").write_text((root / "dockwright.yaml").read_text().replace(", libs/away", ""))
    ok = invoke("compile", cwd=root, env={"NO_COLOR": "1"})
    assert ok.returncode == 0, ok.stderr
    assert json.loads((root / "generated/manifest.json").read_text())["images"]["base"]["inputs"] == [
        "generated/images/base/Dockerfile", "libs/here/"]
    assert "COPY libs/here/ /opt/dockwright/local/libs/here/\n" in tree(root / "generated")[
        "images/base/Dockerfile"].decode()


def test_a_build_file_linked_out_of_the_project_is_refused(tmp_path: Path) -> None:
    """dockwright lock reads a package's build files: a pyproject.toml (or setup.py, setup.cfg) that is a link
    to a file elsewhere is refused where the package is named, like any path leaving the project; one that
    links inside the project is fine."""
    (tmp_path / "outside.toml").write_text(PYPROJECT)
    root = tmp_path / "project"
    (root / "libs/x").mkdir(parents=True)
    (root / "libs/shared.toml").write_text(PYPROJECT)
    os.symlink("../shared.toml", root / "libs/x/pyproject.toml")
    (root / "dockwright.yaml").write_text('version: 1\nproject: t\nenvironments:\n'
                                          '  base: {python: "3.11", local_packages: [libs/x]}\nrunner: {environment: base}\n')
    assert invoke("compile", cwd=root).returncode == 0
    for name in ("pyproject.toml", "setup.cfg"):
        (root / "libs/x" / name).unlink(missing_ok=True)
        os.symlink(tmp_path / "outside.toml", root / "libs/x" / name)
        result = invoke("validate", cwd=root, env={"NO_COLOR": "1"})
        assert result.returncode == 1
        assert result.stderr.splitlines()[0] == (
            f"dockwright.yaml:4:43: error: local package 'libs/x': its {name} leads outside the project directory "
            "through a symbolic link (make it a file of the package, not a link to one elsewhere)")
        (root / "libs/x" / name).unlink()


def test_explain_shows_each_package_and_where_it_came_from(tmp_path: Path) -> None:
    for rel, text in PACKAGES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "dockwright.yaml").write_text("""version: 1
project: t
environments:
  base: {python: "3.11", local_packages: [libs/a]}
  child: {extends: base, local_packages: [.]}
runner: {environment: child}
""")
    result = invoke("explain", "child", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[3:] == [
        "",
        "base       python:3.11-slim  dockwright.yaml:4  via extends base",
        "installer  pip               (default)",
        "local_packages",
        "  libs/a                     dockwright.yaml:4  via extends base",
        "  .                          dockwright.yaml:5",
        "",
    ]


def test_an_editable_line_in_a_requirements_file_points_at_local_packages(project) -> None:
    with pytest.raises(ConfigError) as info:
        compiled(project, """environments:
  base: {python: "3.11", requirements_files: [requirements.txt]}
runner: {environment: base}
""", {"requirements.txt": "pandas==2.2.2\n-e .\n"})
    got = [(d.location.line, d.message, d.hint) for d in info.value.diagnostics]
    assert got == [(2, "option '-e' is not supported in requirements files",
                    "list the package directory under `local_packages:` instead")]


def test_dockerignore_that_leaves_out_a_package_or_its_build_file_warns(project) -> None:
    c = compiled(project, """environments:
  base: {python: "3.11", local_packages: [libs/a, libs/b, .]}
runner: {environment: base}
""", {".dockerignore": "libs/b\n**/pyproject.toml\n!libs/a/pyproject.toml\n"})
    got = [(w.location.line, w.location.col, w.message, w.hint) for w in c.warnings if w.location is not None]
    assert got == [
        (4, 51, ".dockerignore leaves out local package 'libs/b', so building the generated Dockerfiles fails",
         "remove the pattern that matches it, or add '!libs/b' after it"),
        (4, 59, ".dockerignore leaves out local package '.' ('pyproject.toml'), so building the generated "
         "Dockerfiles fails", "remove the pattern that matches it, or add '!pyproject.toml' after it"),
    ]
