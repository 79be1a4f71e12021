"""A value from the command line or the environment (a path, a name, DOCKER_HOST) is echoed in an error with
its control characters escaped: nothing a user or a script passes in can drive the terminal that reads
dockwright's messages (an escape sequence, a bell, a carriage return that hides the line, a line break)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler import cli

PROJECT = ("version: 1\nproject: p\nenvironments:\n  base: {python: '3.11'}\nrunner: {environment: base}\n"
           "pipelines:\n  p:\n    environment: base\n    steps: {a: {}}\n")

# Where a value reaches a message: (args, env), with V standing for the value.
CHANNELS = {
    "-f": (["-f", "V", "validate"], {}),
    "explain": (["explain", "V"], {}),
    "build image": (["build", "V"], {}),
    "--builder": (["build", "--builder", "V"], {}),
    "DOCKER_HOST": (["build"], {"DOCKER_HOST": "tcp://V:2375"}),
    "--upgrade-package": (["lock", "--upgrade-package", "V"], {}),
    "init": (["init", "V"], {}),
    "import -C": (["import", "zenml", "-C", "V", "pipeline.py"], {}),
    "export zenml": (["export", "zenml", "V"], {}),
}
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # a line break is the messages' own


def _run(root: Path, args: list[str], env: dict[str, str]) -> tuple[int, str]:
    before = os.getcwd()
    os.chdir(root)
    try:  # color=True: click strips nothing, so the test sees what a terminal gets
        result = CliRunner(env={"NO_COLOR": None, **env}).invoke(cli.main, args, prog_name="dockwright", obj={},
                                                                 catch_exceptions=False, color=True)
    finally:
        os.chdir(before)
    return result.exit_code, result.stderr


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ctl")
    (folder / "dockwright.yaml").write_text(PROJECT, encoding="utf-8")
    return folder


_CONTROL = st.characters(min_codepoint=0, max_codepoint=0x9f).filter(lambda c: bool(RAW.fullmatch(c) or c == "\n"))
VALUES = st.builds(lambda a, c, b: "v" + a + c + b, st.text(max_size=6),
                   st.text(_CONTROL, min_size=1, max_size=4).filter(lambda t: t != "\n" and "\x00" not in t),
                   st.text(max_size=6)).filter(lambda v: "\x00" not in v)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_a_control_character_in_a_value_never_reaches_stderr_raw(root: Path, channel: str, value: str) -> None:
    args, env = CHANNELS[channel]
    code, stderr = _run(root, ["-q", *(value if a == "V" else a for a in args)],
                        {k: v.replace("V", value) for k, v in env.items()})
    assert code in (1, 2, 3), (code, stderr)
    assert not RAW.search(stderr), repr(stderr)
    assert stderr.startswith("error: "), repr(stderr)
    assert len(stderr.rstrip("\n").split("\n")) <= 2, repr(stderr)  # the message and at most its hint


def test_the_escape_is_shown_as_python_would_write_it(root: Path) -> None:
    code, stderr = _run(root, ["explain", "a\x1b[31mb\x07"], {})
    assert (code, stderr) == (2, "error: unknown environment 'a\\x1b[31mb\\x07'\nhint: environments: base\n")


@given(st.text(_CONTROL, min_size=1, max_size=4), st.text(max_size=8))
def test_an_engines_words_in_a_build_failure_are_escaped(control: str, text: str) -> None:
    """A failed build's summary quotes the engine and the build log (a RUN's output may colour itself)."""
    from compiler.builders import Outcome
    from compiler.progress import failure
    outcome = Outcome("base", "p-base:x", "failed", message=f"engine {control}{text}", where="Dockerfile:3",
                      instruction="RUN x", log=[f"log {control}{text}", "done"])
    shown = failure(outcome)
    assert not RAW.search(shown), repr(shown)
    assert shown.split("\n")[:2] == ["error: image 'base' failed at Dockerfile:3", "  RUN x"]
