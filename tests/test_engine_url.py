"""Engine addresses: a builder's url is checked where it is written (compile), DOCKER_HOST before a build; every
malformed value is one clear line, never a traceback, and an address that passes never makes the SDK fail on its
form (a property checked against the docker SDK's own parser)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from docker.utils import parse_host
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.engine_url import problem
from helpers import invoke

PROJECT = """version: 1
project: urls
environments:
  e: {python: "3.11"}
runner: {environment: e}
"""
HINT = "(write tcp://host:port, ssh://user@host or unix:///var/run/docker.sock)"


def test_builder_urls_are_checked_where_they_are_written(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(PROJECT + """builders:
  a: {type: docker, url: "tcp://127.0.0.1:99999"}
  b: {type: docker, url: "tcp://build-host:abc"}
  c: {type: docker, url: "tcp://build-host"}
  d: {type: docker, url: "ssh://me:secret@build-host"}
  e: {type: docker, url: "tcp://[::1:2376"}
  f: {type: docker, url: "tcp://host:2376?tls=1"}
  local: {type: docker, tls: {ca: ca.pem}}
  s: {type: docker, url: "ssh://me@build-host", tls: {ca: ca.pem}}
  k: {type: docker, url: "tcp://build-host:2376", tls: {ca: ca.pem, key: key.pem}}
  ok: {type: docker, url: "tcp://[::1]:2376", tls: {ca: ca.pem, cert: cert.pem, key: key.pem}}
""")
    result = invoke("validate", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert errors == [
        f"dockwright.yaml:7:26: error: invalid engine url 'tcp://127.0.0.1:99999' in builder 'a': port 99999 is out "
        f"of range (1-65535) {HINT}",
        f"dockwright.yaml:8:26: error: invalid engine url 'tcp://build-host:abc' in builder 'b': port 'abc' is not a "
        f"number {HINT}",
        f"dockwright.yaml:9:26: error: invalid engine url 'tcp://build-host' in builder 'c': it names no port "
        f"(engines listen on 2375, or 2376 with TLS) {HINT}",
        f"dockwright.yaml:10:26: error: invalid engine url 'ssh://me:***@build-host' in builder 'd': it holds a "
        f"password, which ssh:// engines do not take (they take your ssh client's keys) {HINT}",
        f"dockwright.yaml:11:26: error: invalid engine url 'tcp://[::1:2376' in builder 'e': invalid IPv6 URL {HINT}",
        f"dockwright.yaml:12:26: error: invalid engine url 'tcp://host:2376?tls=1' in builder 'f': an engine address "
        f"has no query (?), fragment (#) or parameters (;) {HINT}",
        "dockwright.yaml:13:25: error: builder 'local' has tls but no url (tls is for a remote engine: add url: "
        "tcp://host:2376, or remove tls; the local engine takes DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker "
        "CLI does)",
        "dockwright.yaml:14:49: error: builder 's' has tls, but its url is ssh:// (tls is for tcp:// engines: ssh:// "
        "uses your ssh client's keys, unix:// and npipe:// a local socket)",
        "dockwright.yaml:15:51: error: builder 'k' has a tls key but no cert (the engine checks the client's "
        "certificate with its key: give both, or neither)",
    ]
    assert "secret" not in "\n".join(errors)  # the source line below an error shows the file as it is


@pytest.mark.parametrize(("host", "why"), [
    ("tcp://127.0.0.1:99999", "port 99999 is out of range (1-65535)"),
    ("tcp://127.0.0.1:abc", "port 'abc' is not a number"),
    ("tcp://", "it names no host"),
    ("127.0.0.1", "it names no port (engines listen on 2375, or 2376 with TLS)"),
    ("fd://", "Docker engines listen on tcp://, unix://, ssh:// or npipe://, not fd://"),
    ("tcp://[::1:2376", "invalid IPv6 URL"),
    ("tcp://me:s3cret@build-host:2376", "it holds a password, which tcp:// engines do not take (they take tls files)"),
])
def test_malformed_docker_host_is_one_line(tmp_path: Path, host: str, why: str) -> None:
    (tmp_path / "dockwright.yaml").write_text(PROJECT)
    result = invoke("build", cwd=tmp_path, env={"NO_COLOR": "1", "DOCKER_HOST": host})
    assert result.returncode == 3
    shown = host.replace(":s3cret@", ":***@")
    assert result.stderr.splitlines()[1:] == [
        f"error: DOCKER_HOST={shown} is not a Docker engine address: {why}; set it to unix:///var/run/docker.sock, "
        "tcp://host:2376 or ssh://user@host, or unset it for the default socket"]
    assert "s3cret" not in result.stderr + result.stdout


def test_docker_tls_verify_without_certificates_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(PROJECT)
    result = invoke("build", cwd=tmp_path, env={"NO_COLOR": "1", "DOCKER_HOST": "tcp://127.0.0.1:9",
                                                 "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)})
    assert result.returncode == 3
    assert result.stderr.splitlines()[1:] == [
        "error: cannot reach the Docker engine at tcp://127.0.0.1:9 (builder 'local'): DOCKER_TLS_VERIFY or "
        f"DOCKER_CERT_PATH is set, but {tmp_path} lacks ca.pem, cert.pem or key.pem; point DOCKER_CERT_PATH at the "
        "folder that holds them, or unset both"]


PIECES = ["tcp://", "ssh://", "unix://", "http://", "https://", "npipe://", "fd://", "tcp:/", "://", "h", "host",
          "build-host", "127.0.0.1", "[::1]", "[::1", "::1", "u@", "u:p@", "@", ":", ":2376", ":99999", ":0", ":-1",
          ":abc", ":", "/", "/var/run/docker.sock", "?", "#", " ", "%", "_", ".", "-", "\\", "'", "\t", "é"]


@settings(max_examples=1500, deadline=None, derandomize=True, database=None)
@given(parts=st.lists(st.sampled_from(PIECES), max_size=6), bare=st.booleans())
def test_what_passes_the_check_the_sdk_takes(parts: list[str], bare: bool) -> None:
    """The property that would have caught tcp://host:99999: an address problem() lets through never makes the
    SDK raise on its form (ValueError, or its own 'Invalid bind address'); one the SDK refuses, problem() names."""
    url = "".join(parts)
    if not bare and "://" not in url:
        return
    why = problem(url, bare=bare)
    try:
        parse_host(url, False, tls=False)
        refused = None
    except (ValueError, docker.errors.DockerException) as exc:
        refused = exc
    if why is None and not url.lower().startswith("npipe://"):  # npipe: Windows only, said when connecting
        assert refused is None, f"{url!r} passes the check, but the SDK says {refused}"
        if not url.lower().startswith("ssh://"):  # ssh needs paramiko to make a client (see docker_engine)
            docker.DockerClient(base_url=url if "://" in url else f"tcp://{url}", version="1.24").close()
    if refused is not None:
        assert why is not None, f"the SDK refuses {url!r} ({refused}), the check does not"
