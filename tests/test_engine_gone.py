"""Every call a build makes on an engine that does not answer fails its image in words naming the endpoint and
what dockwright was doing, never with a connection error's repr (the class of 'ProtocolError: Connection broken')."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from compiler.builders.base import Endpoint, ImageFailed, Job
from compiler.builders.context import Snapshot
from compiler.builders.docker_engine import DockerBuilder

JOB = Job(name="app", tag="p-app:0123456789ab", push_tag="127.0.0.1:5000/p-app:0123456789ab",
          dockerfile="generated/images/app/Dockerfile", context=".", inputs=(), parent=None, checks=(), project="p")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hanging_up_engine() -> int:
    """An 'engine' that answers /version (so a client can be made) and hangs up on anything else mid-answer."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                request = conn.recv(65536)
                if b" /version" in request:
                    body = b'{"ApiVersion": "1.41"}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
                else:  # the start of an answer, then nothing
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"stream\":\"Step")

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


CALLS: dict[str, tuple[str, Callable[[DockerBuilder], Any]]] = {
    "base_id": ("while looking up its parent image busybox:1", lambda b: b.base_id("busybox:1", print, "app")),
    "user_of": ("while looking up its parent image busybox:1", lambda b: b.user_of("busybox:1")),
    "find": ("while looking for an image built with the same key", lambda b: b.find(JOB, "sha256:k")),
    "fetch": (f"while pulling {JOB.push_tag}", lambda b: b.fetch(JOB, "sha256:k", print)),
    "tag": ("while tagging it p-app:1", lambda b: b.tag("sha256:0", "p-app:1")),
    "push": (f"while pushing it to {JOB.push_tag}", lambda b: b.push("sha256:0", JOB.push_tag or "", print, "app")),
    "check": ("while starting a check", lambda b: b.check("sha256:0", "true", threading.Event())),
    "build": ("during the build", lambda b: b.build(JOB, "sha256:k", Snapshot("Dockerfile", b"FROM x\n", ()),
                                                   fresh=False, report=lambda p: None, cancel=threading.Event())),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("engine", ["refuses", "hangs-up"])
def test_every_engine_call_fails_in_words(call: str, engine: str) -> None:
    port = closed_port() if engine == "refuses" else hanging_up_engine()
    url = f"tcp://127.0.0.1:{port}"
    builder = DockerBuilder(Endpoint("b", "docker", url, {}, {}, Path(".")))
    when, do = CALLS[call]
    if engine == "refuses":
        with pytest.raises(ImageFailed) as failed:
            do(builder)
        assert str(failed.value) == f"lost the Docker engine at {url} (builder 'b') {when}: Connection refused"
        return
    builder.client  # noqa: B018 - the property makes the client while the engine still answers /version
    with pytest.raises(ImageFailed) as failed:
        do(builder)
    assert str(failed.value) == f"lost the Docker engine at {url} (builder 'b') {when}: the connection broke"
    builder.close()
