"""A copy or local_packages source that is, or holds, a builder's tls key is a located error unless
.dockerignore leaves the key out: the COPY layer would keep it in the image."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.errors import ConfigError
from compiler.driver import compile_project

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


def _project(root: Path, copy: str, dockerignore: str | None = None) -> Path:
    files = {"dockwright.yaml": f"""version: 1
project: k
environments:
  base:
    python: "3.11"
    {copy}
runner: {{environment: base}}
builders:
  remote:
    type: docker
    url: tcp://build.example:2376
    tls: {{ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}}
""", "certs/ca.pem": PEM, "certs/cert.pem": PEM, "certs/key.pem": KEY, "pyproject.toml": "[project]\\nname='k'\\n"}
    if dockerignore is not None:
        files[".dockerignore"] = dockerignore
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "dockwright.yaml"


@pytest.mark.parametrize("copy, col, what, rel", [
    ('local_packages: ["."]', 22, "local package", "."),
    ("copy: [certs/]", 12, "copy source", "certs/"),
    ("copy: [{from: certs/key.pem, to: /k}]", 12, "copy source", "certs/key.pem"),
])
def test_copying_a_builder_tls_key_is_an_error(tmp_path: Path, copy: str, col: int, what: str, rel: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_project(_project(tmp_path, copy))
    (d,) = info.value.diagnostics
    assert (d.location.line, d.location.col) == (6, col)  # type: ignore[union-attr]
    assert d.message == (f"{what} '{rel}' holds the private key of builder 'remote' ('certs/key.pem'), which would "
                         "be copied into the image")
    assert d.hint == "add 'certs/key.pem' to .dockerignore, or keep the key outside what copy and local_packages name"


@pytest.mark.parametrize("ignore", ["certs/key.pem\n", "certs\n", "**/*.pem\n!certs/ca.pem\n!certs/cert.pem\n"])
def test_a_key_left_out_by_dockerignore_is_fine(tmp_path: Path, ignore: str) -> None:
    compile_project(_project(tmp_path, 'local_packages: ["."]', ignore))


def _secret_project(root: Path, copy: str, secret: str, dockerignore: str | None = None) -> Path:
    """A build secret read from a file in the project, and a copy or local package that may hold it; a child
    environment inherits the secret (a secret's file is private wherever it is declared)."""
    files = {"dockwright.yaml": f"version: 1\nproject: k\nenvironments:\n  base:\n    python: \"3.11\"\n"
                                f"    secrets: {{token: {{file: '{secret}'}}}}\n  app:\n    extends: base\n    {copy}\n"
                                "runner: {environment: app}\n",
             "conf/token.txt": "s3cr3t\n", "conf/app.yaml": "a: 1\n", "pyproject.toml": "[project]\nname='k'\n"}
    if dockerignore is not None:
        files[".dockerignore"] = dockerignore
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "dockwright.yaml"


@pytest.mark.parametrize("secret", ["conf/token.txt", "./conf/../conf/token.txt", "ABSOLUTE"])
@pytest.mark.parametrize("copy, what, rel", [
    ('local_packages: ["."]', "local package", "."),
    ("copy: [conf/]", "copy source", "conf/"),
    ("copy: [{from: conf/token.txt, to: /k}]", "copy source", "conf/token.txt"),
])
def test_copying_a_secret_s_file_is_an_error(tmp_path: Path, copy: str, what: str, rel: str, secret: str) -> None:
    """The file a build secret is read from would be baked into the COPY layer: the secret in the image."""
    secret = str(tmp_path / "conf/token.txt") if secret == "ABSOLUTE" else secret
    with pytest.raises(ConfigError) as info:
        compile_project(_secret_project(tmp_path, copy, secret))
    (d,) = info.value.diagnostics
    assert d.message == (f"{what} '{rel}' holds the file of secret 'token' (environment 'base') ('conf/token.txt'), which "
                         "would be copied into the image")
    assert d.hint == ("add 'conf/token.txt' to .dockerignore, or keep the secret's file outside what copy and "
                      "local_packages name")


@pytest.mark.parametrize("copy, secret, ignore", [
    ("copy: [conf/app.yaml]", "conf/token.txt", None),  # another file of the folder
    ("copy: [conf/]", "~/token.txt", None),  # the build machine's home: never in the project
    ("copy: [conf/]", "conf/token.txt", "conf/token.txt\n"),
    ('local_packages: ["."]', "conf/token.txt", "conf\n"),
])
def test_a_secret_s_file_not_copied_is_fine(tmp_path: Path, copy: str, secret: str, ignore: str | None) -> None:
    compile_project(_secret_project(tmp_path, copy, secret, ignore))
