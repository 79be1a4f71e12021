"""What the property tests share: their settings, the fixture project files, and the check that a
project compiles or fails with located diagnostics only (`file:line:col`, the offending line, a caret)."""

from __future__ import annotations

import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

from compiler.errors import ConfigError, Diagnostic
from compiler.driver import Compiled, compile_project


def props(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )


PROJECT_FILE = "dockwright.yaml"

# Files that the generated projects may point at (copy sources, requirements, custom parents).
FIXTURE_FILES = {
    "requirements.txt": "numpy==1.26.4\n",
    "docker/base.Dockerfile": "FROM python:3.11-slim\n",
    # the final stage (FROM an earlier one) ends as the earlier stage's last user
    "docker/app.Dockerfile": "FROM ubuntu:22.04 AS os\nUSER nobody\nRUN true\nUSER app:app\nFROM os\nENV A=1\n",
    "src/app.py": "print('hi')\n",
    "conf/prod.yaml": "a: 1\n",
    "my file.txt": "x\n",
    "é.txt": "x\n",
    "-x.txt": "x\n",  # exists, but a path part starting with '-' is an error
    "certs/ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "certs/my ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",  # no final newline
    "certs/é.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "certs/key.pem": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",  # an error
    # Local packages: the project itself, and directories whose names need quoting in COPY and in the shell.
    "pyproject.toml": "[project]\nname = 'demo'\nversion = '1'\n",
    "libs/feature lib/pyproject.toml": "[project]\nname = 'featurelib'\nversion = '1'\n",
    "libs/é,x=1@2~+/setup.py": "",
    "libs/cfg/setup.cfg": "",
    "libs/none/README": "",  # not a package: an error
}


@contextmanager
def project_dir(content: str | bytes, files: dict[str, str] | None = None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dw-prop-") as tmp:
        root = Path(tmp)
        for rel, text in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        main = root / PROJECT_FILE
        if isinstance(content, bytes):
            main.write_bytes(content)
        else:
            main.write_bytes(content.encode("utf-8"))
        yield main


def outcome(main: Path) -> Compiled | None:
    """Property 1: compile_project returns a Compiled or raises a ConfigError with located diagnostics."""
    try:
        compiled = compile_project(main)
    except ConfigError as exc:
        check_config_error(exc, main.parent)
        return None
    for warning in compiled.warnings:
        check_diagnostic(warning, main.parent)
    return compiled



# The user each possible parent runs as, as a reader of the fixture knows it (None: not knowable at compile).
PARENT_USERS = {"python:3.11-slim": "root", "docker/base.Dockerfile": "root", "docker/app.Dockerfile": "app:app"}


# -------------------------------------------------------------------------------------------------
# Diagnostics


UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The line breaks YAML 1.1 (libyaml) counts; file line counts below use them.
YAML_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
KEY_MESSAGE = re.compile(r"^(?:unknown|duplicate) key '([A-Za-z0-9_-]+)'")


def _file_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


def _line_count(path: Path) -> int:
    data = path.read_bytes()
    text = _file_text(path)
    if text is None:
        return data.count(b"\n") + 1
    return len(YAML_BREAK.split(text))


def check_config_error(exc: ConfigError, root: Path) -> None:
    assert exc.diagnostics, "ConfigError without diagnostics"
    for d in exc.diagnostics:
        assert d.severity == "error"
        check_diagnostic(d, root)
    for w in exc.warnings:
        check_diagnostic(w, root)
    assert isinstance(exc.render(), str) and isinstance(exc.render(color=True), str)
    assert str(exc)


def check_diagnostic(d: Diagnostic, root: Path) -> None:
    loc = d.location
    assert loc is not None, f"diagnostic without a location: {d.format()!r}"
    file = Path(loc.file)
    assert file.is_file(), f"location in a file that does not exist: {file}"
    assert file.resolve().is_relative_to(root.resolve()), f"location outside the project: {file}"
    assert 1 <= loc.line <= _line_count(file) + 1, f"line {loc.line} beyond {file.name}: {d.format()!r}"
    assert loc.col >= 1, f"column {loc.col} < 1: {d.format()!r}"
    assert "\n" not in loc.source_line
    if _file_text(file) is not None:  # a file YAML read: the shown line is one of YAML's lines
        assert not YAML_BREAK.search(loc.source_line), f"line break in the shown line: {d.format()!r}"
    assert d.message.strip(), "empty message"
    text = d.format()
    assert f":{loc.line}:{loc.col}: " in text
    head, *rest = text.split("\n")
    assert not UNPRINTABLE.search(head), f"a control character or line break in the message: {head!r}"
    assert len(rest) in (len(d.notes), len(d.notes) + 2), f"a diagnostic is its head, source line, caret, notes: {text!r}"
    d.format(color=True)
    d.format(cwd=root)
    for _, at in d.notes:
        if at is not None:
            assert Path(at.file).is_file() and at.line >= 1 and at.col >= 1
    # The caret of a key error (copy entries included) points at the key, whatever line breaks the file uses.
    m = KEY_MESSAGE.match(d.message)
    if m and loc.source_line and m.group(1) in loc.source_line:
        rest = loc.source_line[loc.col - 1:]
        assert re.match(r"(?:[&!]\S*\s+)*[\"']?" + re.escape(m.group(1)), rest), \
            f"caret does not point at the key: {d.format()!r}"



def compile_text(text: str, files: dict[str, str] | None = None) -> Compiled | None:
    with project_dir(text, files) as main:
        try:
            return compile_project(main)
        except ConfigError as exc:
            check_config_error(exc, main.parent)
            return None


def located_errors(text: str, files: dict[str, str] | None = None) -> list[Diagnostic]:
    """The located diagnostics of a project that must not compile."""
    with project_dir(text, files) as main:
        with pytest.raises(ConfigError) as info:
            compile_project(main)
        check_config_error(info.value, main.parent)
    return list(info.value.diagnostics)
