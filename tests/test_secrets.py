"""No diagnostic prints a secret: a URL credential (`scheme://user:pass@`, `scheme://token@`) in any field,
in a comment or in a requirements file is masked in the message and in the source line shown under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.errors import ConfigError, Diagnostic, Location, mask_credentials
from compiler.pipeline import compile_project
from tests.test_line_breaks import FILES, place, sample, schema_fields
from tests.test_properties import props

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
