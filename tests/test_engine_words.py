"""What the buildah and podman backends read from their engines' words (the real engines' output, pinned here
as they print it; tests/builders/test_engines.py runs them for real), and what compile says of a buildah url."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.builders.buildah import failure_message, loopback, sha
from compiler.builders.base import Endpoint
from compiler.builders.docker_engine import PodmanBuilder, service_limits
from helpers import run_cli

PODMAN = PodmanBuilder(Endpoint("pm", "podman", None, {}, {}, Path(".")))


def test_buildah_failure_words() -> None:
    # buildah 1.28's last lines for a failing RUN (stderr merged into stdout)
    assert failure_message(["STEP 4/5: RUN echo boom; exit 3", "boom", "subprocess exited with status 3",
                            "subprocess exited with status 3",
                            'Error: building at STEP "RUN echo boom; exit 3": exit status 3']) == \
        "the command returned a non-zero code: 3"
    assert failure_message(["Error: no FROM statement found"]) == "no FROM statement found"
    assert failure_message([]) == "buildah ended the build without an image"


def test_podman_stream_and_error_words() -> None:
    assert PODMAN.endpoint.url == "unix:///run/podman/podman.sock"  # no url: podman's rootful socket
    assert PODMAN.error_words('building at STEP "RUN echo boom; exit 3": while running runtime: exit status 3\n') \
        == "the command returned a non-zero code: 3"
    assert PODMAN.error_words("some other failure") == "some other failure"
    for line in ("--> Using cache 717d261f6b1c6cd30633fa1d6b1d157337066a163e1e568088d9352459f901ee",
                 "--> 717d261f6b1", "COMMIT", "Successfully built 49d84f5f109a",
                 "49d84f5f109a45a8ddf42bcf850730afe758c4f18d4cf55dc837b4f5dde32c72"):
        assert PODMAN.noise(line), line
    assert not PODMAN.noise("hi")
    m = PODMAN.step_line.match('STEP 4/4: LABEL "io.dockwright.build-key"="k1"')
    assert m is not None and m.groups() == ("4", "4", 'LABEL "io.dockwright.build-key"="k1"')


def test_loopback_registries_only() -> None:
    for tag in ("127.0.0.1:25000/a/b:1", "localhost:5000/x:1", "[::1]:5000/x:1", "127.8.9.1/x:1"):
        assert loopback(tag), tag
    for tag in ("registry.example.com:5000/x:1", "10.0.0.1:5000/x:1", "localhost.evil.com/x:1", "python:3.11"):
        assert not loopback(tag), tag


@given(st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
def test_ids_are_the_same_string_on_every_engine(hexid: str) -> None:
    assert sha(hexid) == sha(f"sha256:{hexid}") == f"sha256:{hexid}"


def test_service_limits_of_a_socket_nobody_serves(tmp_path: Path) -> None:
    assert service_limits(f"unix://{tmp_path}/none.sock") == []
    assert service_limits("tcp://127.0.0.1:1") == []


@pytest.mark.parametrize("key", ["url", "tls"])
def test_buildah_takes_no_url_or_tls(key: str, tmp_path: Path) -> None:
    value = "unix:///run/x.sock" if key == "url" else "{verify: false}"
    (tmp_path / "dockwright.yaml").write_text(
        "version: 1\nproject: p\nenvironments:\n  e: {parent_image: 'python:3.11-slim'}\nrunner: {environment: e}\n"
        f"builders:\n  bh:\n    type: buildah\n    {key}: {value}\n")
    done = run_cli("validate", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"dockwright.yaml:9:5: error: builder 'bh' has type buildah, which takes no {key} (buildah runs on the "
        "machine that runs dockwright: remove it, or use type: podman with the url of a `podman system service` "
        "socket)")


def test_a_failure_report_has_no_terminal_codes_and_a_hint_for_an_untrusted_certificate() -> None:
    """pip colours its errors for a terminal: the log tail showed `\\x1b[91m` on every line; a certificate a
    build does not trust gets the way out (a new user's first build behind a proxy)."""
    from compiler import progress
    from compiler.builders.base import Outcome, Scrubber

    scrub = Scrubber({})
    log = ["\x1b[91mERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org', "
           "port=443): Max retries exceeded (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
           "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain')))",
           "\x1b[0m\x1b]0;title\x07done \x1b[2K\x1b[1Aend"]
    outcome = scrub.outcome(Outcome("base", "p-base:1", "failed", where="generated/images/base/Dockerfile:24",
                                    message="The command returned a non-zero code: 1", log=log))
    assert outcome.log[1] == "done end"
    assert progress.failure(outcome).splitlines()[-3:] == [
        "  | ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org', port=443): Max "
        "retries exceeded (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
        "certificate verify failed: self-signed certificate in certificate chain')))",
        "  | done end",
        "hint: the build does not trust a TLS certificate (a company proxy or a private index signs with its own CA): "
        "list that CA's PEM file under `certificates:` of the environment (docs/language.md, \"Proxies, private "
        "indexes and CA certificates\")"]


@given(st.text(alphabet=st.sampled_from(["\x1b", "[", "]", "0", "1", ";", "m", "K", "a", "\x07", "\\", " "]),
               max_size=40))
def test_no_escape_character_survives_the_scrubber(text: str) -> None:
    from compiler import progress
    from compiler.builders.base import Outcome, Scrubber

    shown = progress.failure(Scrubber({}).outcome(Outcome("a", "t", "failed", log=[text])))
    assert "\x1b" not in shown and "\x07" not in shown


def _cut(kind: str) -> BaseException:
    """A connection cut mid-answer, as each layer under the docker SDK reports it (nested as they nest it)."""
    import http.client

    import requests
    import urllib3

    inner: BaseException = {
        "ended prematurely": urllib3.exceptions.ProtocolError("Response ended prematurely"),
        "incomplete read": urllib3.exceptions.ProtocolError("Connection broken", http.client.IncompleteRead(b"x", 3)),
        "reset": urllib3.exceptions.ProtocolError("x", ConnectionResetError(104, "Connection reset by peer")),
        "remote disconnected": http.client.RemoteDisconnected("Remote end closed connection without response"),
        "broken pipe": BrokenPipeError(32, "Broken pipe"),
    }[kind]
    try:
        try:
            raise inner
        except BaseException as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except requests.exceptions.ChunkedEncodingError as outer:
        return outer


@pytest.mark.parametrize("kind", ["ended prematurely", "incomplete read", "reset", "remote disconnected",
                                  "broken pipe"])
def test_every_way_a_connection_breaks_mid_answer_is_one_phrase(kind: str) -> None:
    """CI saw urllib3's 'Response ended prematurely' printed where the other cuts say 'the connection broke':
    the kind of exception decides, wherever it sits in the nest, not one wording of it."""
    from compiler.builders.docker_engine import _broken

    assert _broken(_cut(kind)) == "the connection broke"
    assert _broken(ValueError("something else")) == "something else"
