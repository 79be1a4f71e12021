"""A value never escapes its Dockerfile instruction: crafted strings in every field that reaches a Dockerfile
are either located errors or read back by BuildKit's parser as exactly that value."""

from __future__ import annotations

import posixpath
import re
from typing import Any

import dockerfile
import pytest
import yaml

from compiler.errors import ConfigError
from compiler.driver import Compiled, compile_project

from tests.dockerfile_check import check_output
from tests.property_support import FIXTURE_FILES, PARENT_USERS, check_config_error, located_errors, project_dir


PAYLOADS = {
    "nl-from": "x\nFROM evil",
    "crlf-from": "x\r\nFROM evil",
    "cr-from": "x\rFROM evil",
    "backslash-eol": "x \\",
    "backslash-nl": "x \\\nFROM evil",
    "quote": 'a"b',
    "lone-quote": '"',
    "single-quote": "it's",
    "subst": "$(rm -rf /)",
    "backtick": "`rm -rf /`",
    "var": "${PATH}",
    "heredoc": "cat <<EOF\nFROM evil\nEOF",
    "heredoc-marker": "<<EOF",
    "escape-directive": "# escape=`",
    "json": '["/bin/sh", "-c", "evil"]',
    "nul": "a\x00b",
    "u2028": "a\u2028FROM evil",
    "nel": "a\x85FROM evil",
    "nbsp": "echo hi\u00a0",
    "lead-nbsp": "\u00a0echo hi",
    "ideographic-space": "\u3000echo hi\u3000",
    "trailing-nel": "echo hi\x85",
    "trailing-u2029": "echo hi\u2029",
    "non-ascii": "é日本🙂",
    "tab": "a\tb",
    "flag-network": "--network=host echo hi",
    "flag-mount": "--mount=type=bind,source=/,target=/host cat /host/etc/shadow",
    "flag-from": "--from=alpine",
    "dash": "-x",
    "space-dash": " \t-x",
    "spaces": "a b",
    "empty": "",
}

# Where each field goes; the compiled plan must then hold the payload itself.
BASE_ENV = {"python": "3.11", "requirements": ["pandas==2.2.2"], "user": "app", "workdir": "/app"}


def _place(field: str, payload: str) -> tuple[dict[str, Any], dict[str, str]]:
    env: dict[str, Any] = dict(BASE_ENV)
    files = dict(FIXTURE_FILES)
    if field == "env":
        env["env"] = {"V": payload}
    elif field == "label":
        env["labels"] = {"v": payload}
    elif field == "build_arg":
        env["build_args"] = {"V": payload}
        env["run"] = ["echo uses-args"]
    elif field in ("run", "entrypoint", "cmd", "installer_args", "apt_packages", "requirements", "checks"):
        env[field] = [payload] if field != "requirements" else ["pandas==2.2.2", payload]
    elif field == "copy_dest":
        env["copy"] = [{"from": "conf/prod.yaml", "to": payload}]
    elif field == "copy_src":
        env["copy"] = [payload]
        if payload and "\x00" not in payload and "/" not in payload and payload not in (".", ".."):
            files[payload] = "x\n"
    elif field in ("user", "workdir"):
        env[field] = payload
    elif field == "index_url":
        env["index_url"] = f"https://h/{payload}"
    elif field == "certificate":
        env["certificates"] = [payload]
        if payload and "\x00" not in payload and "/" not in payload and payload not in (".", ".."):
            files[payload] = FIXTURE_FILES["certs/ca.pem"]
    elif field == "step_env":
        pass
    else:
        raise AssertionError(field)
    project: dict[str, Any] = {"version": 1, "project": "demo", "environments": {"base": env},
                               "runner": {"environment": "base"}}
    if field == "step_env":
        project["pipelines"] = {"p": {"environment": "base",
                                      "steps": {"s": {"settings": {"env": {"V": payload}}}}}}
    return project, files


def _holds(compiled: Compiled, field: str, payload: str) -> None:
    """The plan holds the payload itself (not a mangled copy) where it was written."""
    name = "p.s" if field == "step_env" else "base"
    image = compiled.plan.images[compiled.plan.env_image[name]]
    spec = image.spec
    assert spec is not None
    if field in ("env", "step_env"):
        assert ("V", payload) in spec.env
    elif field == "label":
        assert ("v", payload) in spec.labels
    elif field == "build_arg":
        assert ("V", payload) in spec.build_args
    elif field == "run":
        assert payload in spec.run
    elif field in ("entrypoint", "cmd"):
        assert getattr(spec, field) == (payload,)
    elif field == "installer_args":
        assert spec.installer_args == (payload,)
    elif field == "index_url":
        assert spec.index_url == f"https://h/{payload}"
    elif field == "certificate":
        assert [src for src, _ in spec.certificates] == [posixpath.normpath(payload)]
    elif field in ("user", "workdir"):
        assert getattr(spec, field) == payload
    elif field == "checks":
        assert payload in image.checks


INJECTION_FIELDS = ["env", "label", "build_arg", "step_env", "run", "entrypoint", "cmd", "installer_args",
                    "copy_dest", "copy_src", "requirements", "apt_packages", "user", "workdir", "checks", "index_url",
                    "certificate"]

_CONTROL_VALUE = r"value of 'V' in '(?:settings\.)?(?:env|labels|build_args)' .* contains a newline or control character"
_INSTALLER_ARG = r"installer argument '.*' contains a newline or control character"
_DASH_COMMAND = r"command '.*' starts with '-'"
# Decided outcomes: these (field, payload) pairs must be a located ConfigError with a matching
# message (an ENV/LABEL/ARG value is one line; installer args are one line each; a RUN command
# or a COPY path never reads as a flag) ...
EXPECTED_ERRORS: dict[tuple[str, str], str] = {
    **{(field, "tab"): _CONTROL_VALUE.replace("'V'", "'[Vv]'") for field in ("env", "label", "build_arg", "step_env")},
    **{("installer_args", key): _INSTALLER_ARG
       for key in ("nl-from", "crlf-from", "cr-from", "backslash-nl", "heredoc", "tab", "nul")},
    **{(field, key): _DASH_COMMAND for field in ("run", "checks")
       for key in ("flag-network", "flag-mount", "flag-from", "dash", "space-dash")},
    ("copy_src", "flag-from"): r"copy source '--from=alpine' has a part starting with '-'",
    ("copy_src", "dash"): r"copy source '-x' has a part starting with '-'",
    ("copy_dest", "flag-from"): r"invalid copy destination '--from=alpine'",
    ("copy_dest", "dash"): r"invalid copy destination '-x'",
    **{("index_url", key): r"invalid index URL 'https://h/" for key in ("nl-from", "backtick", "spaces", "non-ascii")},
    ("certificate", "dash"): r"certificate '-x' has a part starting with '-'",
}
# ... and these must compile, the RUN command kept exactly (Unicode whitespace at either end included).
MUST_COMPILE = {("run", key) for key in ("nbsp", "lead-nbsp", "ideographic-space", "trailing-nel", "trailing-u2029")}


def _injection_params() -> list[Any]:
    return [pytest.param(field, key, id=f"{field}/{key}") for field in INJECTION_FIELDS for key in PAYLOADS]


@pytest.mark.parametrize("field,key", _injection_params())
def test_injection(field: str, key: str) -> None:
    payload = PAYLOADS[key]
    project, files = _place(field, payload)
    text = yaml.safe_dump(project, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(text) != project:  # PyYAML writes a raw NEL/U+2028 that YAML then reads as a break
        text = yaml.safe_dump(project, sort_keys=False, allow_unicode=False)
    assert yaml.safe_load(text) == project
    with project_dir(text, files) as main:
        try:
            compiled = compile_project(main)
        except ConfigError as exc:
            check_config_error(exc, main.parent)
            assert (field, key) not in MUST_COMPILE, exc.render()
            if (field, key) in EXPECTED_ERRORS:
                pattern = EXPECTED_ERRORS[field, key]
                assert any(re.match(pattern, d.message) for d in exc.diagnostics), exc.render()
            return
        assert (field, key) not in EXPECTED_ERRORS, f"compiled, expected an error {EXPECTED_ERRORS[field, key]!r}"
        check_output(compiled, PARENT_USERS)
        _holds(compiled, field, payload)
        for path, content in compiled.files.items():
            if path.endswith("Dockerfile"):
                froms = [i for i in dockerfile.parse_string(content) if i.cmd == "FROM"]
                assert len(froms) == 1 and "evil" not in froms[0].original, content


# Lines of YAML (double-quoted escapes: "\n" and "\t" are a newline and a tab), and the error each must give.
@pytest.mark.parametrize("line,message", [
    ('run: ["--network=host echo hi"]', "command '--network=host echo hi' starts with '-'"),
    ('run: ["  -x"]', "command '  -x' starts with '-'"),
    ('checks: ["--mount=type=cache,target=/x true"]', "command '--mount=type=cache,target=/x true' starts with '-'"),
    ('installer_args: ["--pre\\nFROM evil"]', "installer argument '--pre\\nFROM evil' contains a newline"),
    ('installer_args: ["a\\tb"]', "installer argument 'a\\tb' contains a newline or control character"),
    ('env: {A: "a\\tb"}', "value of 'A' in 'env' of environment 'base' contains a newline or control character"),
    ('labels: {a: "\\t"}', "value of 'a' in 'labels' of environment 'base' contains a newline or control character"),
    ('build_args: {A: "x\\ty"}', "value of 'A' in 'build_args' of environment 'base' contains a newline"),
    ("copy: [--from=alpine]", "copy source '--from=alpine' has a part starting with '-'"),
    ("copy: [src/-x]", "copy source 'src/-x' has a part starting with '-'"),
    ("copy: [{from: conf/prod.yaml, to: /app/-x}]", "invalid copy destination '/app/-x'"),
])
def test_regression_values_that_would_escape_are_located_errors(line: str, message: str) -> None:
    """A RUN command or COPY path that would read as a flag, a multi-line or tabbed installer arg,
    and a tab in an ENV/LABEL/ARG value are located schema errors, never rendered (nor a crash)."""
    files = {**FIXTURE_FILES, "--from=alpine": "x\n", "src/-x": "x\n"}
    text = ('version: 1\nproject: demo\nrunner: {environment: base}\nenvironments:\n  base:\n    python: "3.11"\n'
            f"    requirements: [pandas==2.2.2]\n    {line}\n")
    (d,) = located_errors(text, files)
    assert d.message.startswith(message), d.format()
    assert d.location is not None and d.location.line == 8, d.format()
