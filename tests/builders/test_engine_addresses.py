"""tls files that cannot work against the real TLS engine: one line each, exit 3, no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import Infra
from test_build import dockwright, unique, write

HANDSHAKE = "TLS failed (handshake): the tls files do not match the engine"


@pytest.mark.parametrize(("files", "why"), [
    ({"ca": "garbage.pem", "cert": "cert.pem", "key": "key.pem"}, HANDSHAKE),
    ({"ca": "ca.pem", "cert": "key.pem", "key": "cert.pem"}, HANDSHAKE),  # swapped
    ({"ca": "ca.pem", "cert": "cert.pem", "key": "garbage.pem"}, HANDSHAKE),
    ({"ca": "certs", "cert": "cert.pem", "key": "key.pem"}, "its tls ca file certs is not a file"),
    ({"ca": "ca.pem", "cert": "missing.pem", "key": "key.pem"}, "its tls cert file certs/missing.pem does not exist"),
], ids=["garbage-ca", "swapped", "garbage-key", "ca-is-a-folder", "missing-cert"])
def test_unusable_tls_files_are_one_line(infra: Infra, tmp_path: Path, files: dict[str, str], why: str) -> None:
    tls = ", ".join(f"{key}: certs/{value}" if value != "certs" else f"{key}: certs" for key, value in files.items())
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {unique("tls")}
environments:
  e: {{parent_image: {infra.busybox}}}
runner: {{environment: e}}
builders:
  remote: {{type: docker, url: "{infra.remote_url}", tls: {{{tls}}}}}
default_builder: remote
""", "certs/garbage.pem": "not a certificate\n"})
    for name in ("ca.pem", "cert.pem", "key.pem"):
        shutil.copy(infra.remote_tls_dir / name, root / "certs" / name)
    result = dockwright("build", cwd=root)
    assert result.returncode == 3, result.stderr
    hint = ("; check that the engine listens there and accepts these tls files, or pick another builder"
            if why == HANDSHAKE else "")
    assert result.stderr.splitlines()[1:] == [
        f"error: cannot reach the Docker engine at {infra.remote_url} (builder 'remote'): {why}{hint}"]
