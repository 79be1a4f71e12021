"""A certificates: file is copied whole into the image, so it may hold only PEM CERTIFICATE blocks with
base64 bodies, blank lines and `#` comment lines: a private key in any form, or any other text (a secret
pasted after the certificate), is a located error that never shows the offending line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler import cli

CERT = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n"
MAIN = 'version: 1\nproject: c\nenvironments:\n  base:\n    python: "3.11"\n    certificates: [certs/ca.pem]\n' \
       "runner: {environment: base}\n"
HINT = ("everything in the file is copied into the image, so it may hold only -----BEGIN CERTIFICATE----- blocks, "
        "blank lines and # comment lines; keep only the certificates: openssl x509 -in FILE -out FILE")
KEY_HINT = "list only public CA certificates: a key copied into an image can be read by anyone who has the image"


def _validate(root: Path, pem: str) -> tuple[int, str]:
    (root / "certs").mkdir(exist_ok=True)
    (root / "dockwright.yaml").write_text(MAIN)
    (root / "certs/ca.pem").write_text(pem)
    old = Path.cwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(cli.main, ["validate"], catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stderr


def _error(message: str, hint: str) -> str:
    return (f"dockwright.yaml:6:20: error: certificate 'certs/ca.pem' {message} ({hint})\n"
            "    6 |     certificates: [certs/ca.pem]\n"
            "      |                    ^\n"
            "1 error\n")


def test_certificates_blank_lines_and_comments_pass(tmp_path: Path) -> None:
    assert _validate(tmp_path, "# corp root\n\n" + CERT + "\r\n" + CERT.replace("\n", "\r\n") + "  \n") == (0, "")


@pytest.mark.parametrize("pem, message", [
    (CERT + "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\n", "holds more than certificates: line 4 is not part of a certificate"),
    ("aws_secret=x\n" + CERT, "holds more than certificates: line 1 is not part of a certificate"),
    ("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
     "holds more than certificates: the certificate at line 1 has a body that is not base64 (line 2)"),
    ("-----BEGIN CERTIFICATE-----\nMIIB=\n-----END CERTIFICATE-----\n",
     "holds more than certificates: the certificate at line 1 has a body that is not base64"),
    ("-----BEGIN CERTIFICATE-----\nMIIB\n", "holds more than certificates: the certificate at line 1 has no "
     "-----END CERTIFICATE----- line"),
    (CERT + "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
     "holds more than certificates: line 4 is not part of a certificate"),
])
def test_anything_but_certificates_is_refused(tmp_path: Path, pem: str, message: str) -> None:
    code, err = _validate(tmp_path, pem)
    assert (code, err) == (1, _error(message, HINT))
    assert "wJalrXUtnFEMI" not in err


@pytest.mark.parametrize("key", [
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----\n",
    "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
])
def test_every_private_key_form_is_a_private_key(tmp_path: Path, key: str) -> None:
    assert _validate(tmp_path, CERT + key) == (1, _error("holds a private key", KEY_HINT))
