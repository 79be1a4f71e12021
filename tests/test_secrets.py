"""No diagnostic prints a secret: a URL credential (`scheme://user:pass@`, `scheme://token@`) in any field,
in a comment or in a requirements file is masked in the message and in the source line shown under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.credentials import mask_credentials
from compiler.errors import ConfigError, Diagnostic, Location
from compiler.driver import compile_project
from tests.test_line_breaks import FILES, place, sample, schema_fields
from tests.property_support import props

SECRET_CHARS = st.sampled_from(list("abcXYZ019-._~%!*+,;=") + ["$$", "é"])
secrets = st.lists(SECRET_CHARS, min_size=6, max_size=16).map(lambda cs: "Zq" + "".join(cs))
URLS = ["https://deploy:{s}@pypi.example.com/simple", "http://{s}@proxy:3128", "https://u:p{s}@h/x",
        "git+https://oauth2:{s}@gitlab.example/lib.git", "lib @ git+ssh://git:{s}@github.com/org/lib.git",
        "lib @ https://__token__:{s}@files.example/lib-1.0-py3-none-any.whl", "tcp://me:{s}@host:2376"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("secrets")
    for rel, text in FILES.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text, encoding="utf-8")
    return base


def _printed(main: Path) -> str:
    try:
        compiled = compile_project(main)
    except ConfigError as exc:
        return "\n".join(d.format() + d.format(color=True) for d in [*exc.diagnostics, *exc.warnings]) + str(exc)
    return "\n".join(d.format() for d in compiled.warnings)


FIELDS = schema_fields()


@props(300)
@given(field=st.sampled_from(FIELDS), url=st.sampled_from(URLS), secret=secrets,
       how=st.sampled_from(["value", "after-sample", "comment", "requirements-file", "block-yaml"]))
def test_no_diagnostic_prints_a_secret(root: Path, field: tuple[str, tuple[str, ...]], url: str, secret: str,
                                       how: str) -> None:
    schema, path = field
    credential = url.format(s=secret)
    text = sample(schema, path) or "x"
    files = {}
    if how == "value":
        project = place(schema, path, credential)
    elif how == "after-sample":
        project = place(schema, path, f"{text} {credential}")
    elif how == "requirements-file":
        project = place("environment", ("requirements_files", "[]"), "creds.txt")
        files["creds.txt"] = f"numpy==1.26.4\n{credential}\n-e {credential}\n"
    else:
        project = place(schema, path, text + "\n")  # an error on this line ...
    yaml_text = json.dumps(project, indent=2, ensure_ascii=False)
    if how == "comment":  # ... which also holds a credential in a comment
        yaml_text = "\n".join(ln + f"  # {credential}" if "\\n" in ln else ln for ln in yaml_text.split("\n"))
    if how == "block-yaml":
        yaml_text = yaml_text.replace('\\n"', f'" # see {credential}')
        yaml_text += f"\nbogus: {credential}\n"
    for rel, content in files.items():
        (root / rel).write_text(content, encoding="utf-8")
    (root / "dockwright.yaml").write_text(yaml_text, encoding="utf-8")
    printed = _printed(root / "dockwright.yaml")
    assert secret not in printed, printed


@pytest.mark.parametrize("line,col,shown,caret", [
    ("index_url: https://deploy:s3cret@pypi.example/simple", 12, "index_url: https://***@pypi.example/simple", 12),
    ("x: [https://a:b@h, http://tok@h2/p]", 19, "x: [https://***@h, http://***@h2/p]", 19),
    ("x: [https://a:bbbbbb@h, http://tok@h2/p]", 25, "x: [https://***@h, http://***@h2/p]", 20),
    ("x: http://us:secret@h", 14, "x: http://***@h", 11),  # a caret inside the secret: at the mask
    ("git+ssh://git@github.com/x", 1, "git+ssh://git@github.com/x", 1),  # an ssh user name is no secret
    ("http://${USER}:${PASSWORD}@proxy:3128", 1, "http://${USER}:${PASSWORD}@proxy:3128", 1),
])
def test_mask_credentials_keeps_the_caret_on_its_value(line: str, col: int, shown: str, caret: int) -> None:
    assert mask_credentials(line, col) == (shown, caret)
    d = Diagnostic(Location(Path("f.yaml"), 3, col, line), "message")
    assert d.format().split("\n")[1:] == [f"    3 | {shown}", "      |" + " " * caret + "^"]


@props(300)
@given(field=st.sampled_from(FIELDS), url=st.sampled_from(URLS), secret=secrets,
       how=st.sampled_from(["value", "after-sample", "in-command"]))
def test_no_generated_file_holds_a_secret(root: Path, field: tuple[str, tuple[str, ...]], url: str, secret: str,
                                          how: str) -> None:
    """A URL credential in any string field is a located error (masked), or is written nowhere: not into
    the Dockerfile, requirements.txt or manifest.json."""
    schema, path = field
    credential = url.format(s=secret)
    text = sample(schema, path) or "x"
    value = {"value": credential, "after-sample": f"{text} {credential}", "in-command": f"curl -fsS {credential}"}[how]
    (root / "dockwright.yaml").write_text(json.dumps(place(schema, path, value), indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    try:
        compiled = compile_project(root / "dockwright.yaml")
    except ConfigError as exc:
        assert secret not in str(exc) + "".join(d.format() for d in exc.diagnostics)
        return
    for rel, content in compiled.files.items():
        assert secret not in content, f"{rel} holds the secret of {schema} {path}:\n{content}"


@pytest.mark.parametrize("field, value, message", [
    ("env: {DATABASE_URL: 'postgresql://admin:hunter2@db/x'}", "value of 'DATABASE_URL': 'postgresql://***@db/x' "
     "in 'env' of environment 'base'", "runtime"),
    ("build_args: {PIP_INDEX_URL: 'https://user:hunter2@pypi.corp/simple'}", "value of 'PIP_INDEX_URL': "
     "'https://***@pypi.corp/simple' in 'build_args' of environment 'base'", "runtime"),
    ("labels: {src: 'https://hunter2@h.example/x'}", "value of 'src': 'https://***@h.example/x' in 'labels' of "
     "environment 'base'", "runtime"),
    ("run: ['git clone https://oauth2:hunter2@gitlab/r.git']", "command 'git clone https://***@gitlab/r.git' in "
     "environment 'base'", "build"),
    ("checks: ['curl https://${U}:${P}@h.example/']", "command 'curl https://***@h.example/' in "
     "environment 'base'", "build"),
    ("entrypoint: [x, 'https://a:hunter2@h/']", "argument 'https://***@h/' in environment 'base'", "runtime"),
    ("cmd: ['https://a:hunter2@h/']", "argument 'https://***@h/' in environment 'base'", "runtime"),
])
def test_credentials_in_written_values_are_located_errors(tmp_path: Path, field: str, value: str,
                                                          message: str) -> None:
    from compiler.credentials import RUNTIME_SECRET_HINT, credentials_hint

    (tmp_path / "dockwright.yaml").write_text(f'version: 1\nproject: s\nenvironments:\n  base:\n    python: "3.11"\n'
                                              f"    {field}\nrunner: {{environment: base}}\n")
    with pytest.raises(ConfigError) as info:
        compile_project(tmp_path / "dockwright.yaml")
    (d,) = info.value.diagnostics
    hint = RUNTIME_SECRET_HINT if message == "runtime" else credentials_hint("the Dockerfile and the image history")
    assert d.message == f"{value} carries credentials"
    assert d.hint == hint
    assert "hunter2" not in d.format()
