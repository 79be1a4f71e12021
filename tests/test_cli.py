"""The command line as users drive it: exit codes, exact messages, help, colour only on a terminal.

Exit codes, the usage errors click prints and the terminal run as a real process (run_cli); the rest in this
process (invoke), which prints and exits alike (tests/test_cases.py)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler import cli
from helpers import EXAMPLES, invoke, run_cli

SIMPLE = """version: 1
project: demo
environments:
  base:
    python: "3.11"
    requirements: [pandas==2.2.2]
runner: {environment: base}
pipelines:
  p:
    environment: base
    steps:
      a: {}
      b: {after: [a]}
"""


@pytest.mark.parametrize("command", ["", "validate", "compile", "diff", "graph", "explain"])
def test_help_for_every_command(command: str, tmp_path: Path) -> None:
    result = invoke(*([command] if command else []), "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"Usage: dockwright {command}".rstrip())


def test_no_project_file_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("compile", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: no dockwright.yaml in {tmp_path} or any parent directory\nhint: run dockwright in your project "
                             "directory, or pass -f path/to/dockwright.yaml\n")


@pytest.mark.parametrize("where", [".", "sub/deeper"])
def test_a_folder_named_like_the_project_file_is_said_to_be_one(tmp_path: Path, where: str) -> None:
    """Found on the way up, it is named for what it is: not a missing project file."""
    (tmp_path / "dockwright.yaml").mkdir()
    (tmp_path / where).mkdir(parents=True, exist_ok=True)
    result = invoke("compile", cwd=tmp_path / where)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"error: {tmp_path}/dockwright.yaml is not a regular file\nhint: the project file is a "
                             "YAML file named dockwright.yaml; rename what is there, or pass -f "
                             "path/to/dockwright.yaml\n")


def test_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("graph", "--format", "svg", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--format': 'svg' is not one of 'mermaid', 'dot', 'json'." in result.stderr


def test_invalid_project_exits_1_and_writes_nothing(project) -> None:
    root = project({"dockwright.yaml": SIMPLE.replace("requirements:", "requirments:")})
    result = invoke("compile", cwd=root)
    assert result.returncode == 1
    assert result.stderr == (
        "dockwright.yaml:6:5: error: unknown key 'requirments' in environment 'base' (did you mean 'requirements'?)\n"
        "    6 |     requirments: [pandas==2.2.2]\n"
        "      |     ^\n"
        "1 error; nothing was written\n")
    assert not (root / "generated").exists()


def test_compile_check_and_diff_cycle(project) -> None:
    root = project({"dockwright.yaml": SIMPLE})
    first = invoke("compile", cwd=root)
    assert (first.returncode, first.stdout) == (0, "generated/: 3 created, 0 updated, 0 unchanged, 0 removed\n")
    again = invoke("compile", cwd=root)
    assert again.stdout == "generated/: 0 created, 0 updated, 3 unchanged, 0 removed\n"
    ok = invoke("compile", "--check", cwd=root)
    assert (ok.returncode, ok.stdout) == (0, "generated/ is up to date (3 files)\n")

    (root / "dockwright.yaml").write_text(SIMPLE.replace("pandas==2.2.2", "pandas==2.2.3"))
    stale = invoke("compile", "--check", cwd=root)
    assert stale.returncode == 1
    assert stale.stderr == (
        "stale: generated/images/base/Dockerfile\n"
        "stale: generated/images/base/requirements.txt\n"
        "stale: generated/manifest.json\n"
        "generated/ is out of date (0 to create, 3 to update, 0 unchanged, 0 to remove); run 'dockwright compile'\n")
    diff = invoke("diff", cwd=root)
    assert diff.returncode == 0
    assert "-pandas==2.2.2\n+pandas==2.2.3\n" in diff.stdout
    assert diff.stdout.startswith("--- a/generated/images/base/Dockerfile\n+++ b/generated/images/base/Dockerfile\n")
    assert invoke("diff", "--exit-code", cwd=root).returncode == 1
    invoke("compile", cwd=root)
    assert invoke("diff", "--exit-code", cwd=root).stdout == ""


def test_file_option_from_anywhere(project, tmp_path_factory) -> None:
    root = project({"dockwright.yaml": SIMPLE})
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    for args in (["-f", str(root / "dockwright.yaml"), "validate"], ["validate", "-f", str(root)]):
        result = invoke(*args, cwd=elsewhere)
        assert (result.returncode, result.stdout) == (
            0, f"{root}/dockwright.yaml: ok: 1 environment, 1 pipeline, 1 image\n")  # as errors name it from there


def test_explain_shows_where_each_value_comes_from() -> None:
    result = invoke("explain", "server", cwd=EXAMPLES / "ml-training")
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert lines[0] == "environment 'server' (dockwright.yaml:56), derived from 'base'"
    assert lines[1].startswith("image 'server': churn-server:") and lines[1].endswith(", FROM image 'base'")
    for line in ("base python:3.11-slim dockwright.yaml:20 via extends base",
                 "installer pip (default)",
                 "mlflow-skinny==2.16.2 dockwright.yaml:14 via extends base → integration tracking",
                 "numpy==1.26.4 requirements.txt:2 via extends base",
                 "fastapi==0.115.0 dockwright.yaml:58",
                 "PORT 8080 dockwright.yaml:60",
                 "locked packages (dockwright.lock)",  # the example is locked: each package, and what pulled it in
                 "fastapi==0.115.0 via fastapi==0.115.0 dockwright.yaml:58"):
        assert line in lines


def test_explain_unknown_environment() -> None:
    result = invoke("-q", "explain", "sever", cwd=EXAMPLES / "ml-training")  # -q: no unpinned-parent warnings
    assert (result.returncode, result.stderr) == (2, "error: unknown environment 'sever'\nhint: did you mean 'server'?\n")


def test_graph_formats(project) -> None:
    root = project({"dockwright.yaml": SIMPLE})
    mermaid = invoke("graph", cwd=root).stdout
    assert mermaid == (
        "flowchart LR\n"
        "  subgraph n_p_5f_p[\"pipeline p\"]\n"
        "    n_p_2e_a[\"a<br/>image: base\"]\n"
        "    n_p_2e_b[\"b<br/>image: base\"]\n"
        "    n_p_2e_a --> n_p_2e_b\n"
        "  end\n"
        "  subgraph images[\"images\"]\n"
        "    n_i_5f_base[\"base\"]\n"
        "  end\n")
    dot = invoke("graph", "--format", "dot", cwd=root).stdout
    assert '"p.a" -> "p.b";' in dot and dot.startswith("digraph dockwright {")
    js = invoke("graph", "--format", "json", cwd=root).stdout
    assert js == ('{\n  "images": {\n    "edges": [],\n    "nodes": [\n      "base"\n    ],\n    "order": [\n'
                  '      "base"\n    ]\n  },\n  "pipelines": {\n    "p": {\n      "edges": [\n        [\n'
                  '          "a",\n          "b"\n        ]\n      ],\n      "images": {\n        "a": "base",\n'
                  '        "b": "base"\n      },\n      "nodes": [\n        "a",\n        "b"\n      ],\n'
                  '      "order": [\n        "a",\n        "b"\n      ]\n    }\n  }\n}\n')


def test_warnings_do_not_fail(project) -> None:
    root = project({"dockwright.yaml": SIMPLE + "  spare:\n    python: '3.12'\n".replace("  spare", "  spare")
                    if False else SIMPLE.replace("runner:", "  spare: {python: '3.12'}\nrunner:")})
    result = invoke("validate", cwd=root)
    assert result.returncode == 0
    assert result.stderr == (
        "dockwright.yaml:7:3: warning: environment 'spare' is not used by the runner, the server or any pipeline "
        "(use it, or remove it)\n"
        "    7 |   spare: {python: '3.12'}\n"
        "      |   ^\n")


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return what it printed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "compiler", *args], cwd=cwd, env=env,
                            stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(project) -> None:
    root = project({"dockwright.yaml": SIMPLE.replace("requirements:", "requirments:")})
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\033[1;31merror\033[0m" in _on_a_terminal(["validate"], root, env)
    assert "\033[" not in _on_a_terminal(["validate"], root, {**env, "NO_COLOR": "1"})
    assert "\033[" not in run_cli("validate", cwd=root).stderr


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, project) -> None:
    root = project({"dockwright.yaml": SIMPLE})

    def interrupted(path: Path, **_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "compile_project", interrupted)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli.main, ["compile"])
    assert result.exit_code == 130
    assert result.output == "interrupted\n"


def test_console_script_and_module_agree(project) -> None:
    root = project({"dockwright.yaml": SIMPLE})
    script = Path(sys.executable).parent / "dockwright"
    a = subprocess.run([str(script), "validate"], cwd=root, capture_output=True, text=True)
    b = run_cli("validate", cwd=root)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


def _leaf_commands(group=cli.main, path=()):
    import click
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


LEAVES = list(_leaf_commands())


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("names", [names for names, _ in LEAVES], ids=" ".join)
def test_quiet_and_file_parse_before_and_after_every_command(names: tuple[str, ...], where: str) -> None:
    """Click's own parser (no run): -q and -f FILE are options of the group and of every command."""
    import click
    command = dict(LEAVES)[names]
    args = ["x" for p in command.params if isinstance(p, click.Argument) and p.required]
    options = ["-q", "-f", "other.yaml"]
    with cli.main.make_context("dockwright", [*(options if where == "before" else []), *names, *args]) as ctx:
        parent, group = ctx, cli.main
        for name in names[:-1]:
            group = group.commands[name]
            parent = group.make_context(name, [names[-1], *args], parent=parent)
        with command.make_context(names[-1], [*args, *(options if where == "after" else [])], parent=parent) as sub:
            assert (ctx.obj or {}).get("quiet") or (sub.obj or {}).get("quiet")
            assert "other.yaml" in (ctx.params.get("file"), sub.params.get("file"))


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(("names", "why"), [
    (("init",), "'init': it writes dockwright.yaml in DIRECTORY: give the directory instead"),
    (("schema",), "'schema': the schema is the same for every project"),
    (("import", "zenml", "pipeline.py"), "'import zenml': it writes dockwright.yaml in the directory of -C DIR"),
])
def test_file_is_a_usage_error_where_no_project_file_is_read(names, why, where: str, tmp_path: Path) -> None:
    options = ["-f", "dockwright.yaml"]
    result = invoke(*(options if where == "before" else []), *names, *(options if where == "after" else []),
                    cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"error: -f/--file does not apply to {why}\n")
    assert not (tmp_path / "dockwright.yaml").exists()


def test_quiet_init_prints_only_errors(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("pandas==2.2.2\n", encoding="utf-8")
    result = invoke("init", "-q", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert (tmp_path / "dockwright.yaml").is_file()
    assert invoke("schema", "-q", cwd=tmp_path).stdout.startswith("{\n")
