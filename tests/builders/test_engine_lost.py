"""An engine that goes away while dockwright works: one clear message naming the endpoint, the time spent, exit 3,
no traceback, and what dockwright started on the engine removed (or named, when the engine does not come back).

A small TCP proxy in front of the local engine's socket cuts the connection at a chosen moment, which makes this
deterministic; the local engine itself stays up for everyone else."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import infra as infra_module
import pytest

from infra import Infra
from test_build import dockwright, unique, write

LOCAL_SOCKET = "/var/run/docker.sock"


class CuttingProxy:
    """127.0.0.1:<port> -> the local engine's socket. The first connection whose traffic holds `trigger` (in the
    engine's answer, or in the request when `request` is set) is cut right after that data is forwarded; with
    `stay_down`, the proxy then also stops accepting connections, as an engine that died would."""

    def __init__(self, trigger: bytes, *, request: bool = False, stay_down: bool = False) -> None:
        self.trigger, self.request, self.stay_down = trigger, request, stay_down
        self.cut = threading.Event()
        self.seen = b""  # the engine's answers on the cut connection, up to the cut
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed: the engine "died"
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(LOCAL_SOCKET)
            pair = (client, upstream)
            threading.Thread(target=self.pipe, args=(client, upstream, pair, self.request), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, pair, not self.request), daemon=True).start()

    def pipe(self, src: socket.socket, dst: socket.socket, pair: tuple[socket.socket, socket.socket],
             watch: bool) -> None:
        answers = src is pair[1]
        log = b""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if answers:
                    log += data
                if watch and not self.cut.is_set() and self.trigger in data:
                    with self.lock:
                        if self.cut.is_set():
                            continue
                        self.cut.set()
                        self.seen = log
                    if self.stay_down:
                        self.close()
                    break
        except OSError:
            pass
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        try:  # shutdown, not only close: a listening socket stays open while a thread waits in accept()
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()


@pytest.fixture
def cleanup(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Containers a test must remove itself (the ones dockwright says it could not)."""
    ids: list[str] = []
    yield ids
    for container in ids:
        try:
            docker_client.api.remove_container(container, force=True)
        except docker.errors.NotFound:
            pass


def project(root: Path, port: int, name: str, environment: str) -> Path:
    return write(root, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
{environment}
runner: {{environment: slow}}
builders:
  cut: {{type: docker, url: "tcp://127.0.0.1:{port}"}}
default_builder: cut
"""})


def running_in(seen: bytes) -> str:
    found = re.findall(rb"Running in ([0-9a-f]{12})", seen)
    assert len(found) == 1, seen[-2000:]
    return found[0].decode()


@pytest.mark.parametrize("stay_down", [False, True], ids=["engine-answers-again", "engine-stays-down"])
def test_engine_lost_during_a_build(infra: Infra, docker_client: docker.DockerClient, tmp_path: Path,
                                    stay_down: bool, cleanup: list[str]) -> None:
    proxy = CuttingProxy(b"Running in ", stay_down=stay_down)
    name = unique("lost")
    root = project(tmp_path, proxy.port, name, f"""  slow:
    parent_image: {infra.busybox}
    run: ["sleep 30 && echo {name}"]""")
    try:
        result = dockwright("build", "--json", cwd=root)
    finally:
        proxy.close()
    container = running_in(proxy.seen)
    cleanup.append(container)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    dockerfile = (root / "generated/images/slow/Dockerfile").read_text().splitlines()
    line = dockerfile.index(f"RUN sleep 30 && echo {name}") + 1
    expected = [
        f"error: image 'slow' failed at generated/images/slow/Dockerfile:{line}",
        f"  RUN sleep 30 && echo {name}",
        f"  lost the Docker engine at tcp://127.0.0.1:{proxy.port} (builder 'cut') during the build: the connection "
        "broke"]
    if stay_down:
        expected += [f"  its build container {container} could not be removed: the engine does not answer",
                     f"  hint: docker rm -f {container} once the engine is back"]
    *errors, summary = result.stderr.splitlines()[-len(expected) - 1:]
    assert errors == expected, result.stderr
    assert re.fullmatch(r"0 built, 0 reused, 1 failed, 0 skipped in \d+\.\d s on cut", summary), summary
    (item,) = json.loads(result.stdout)["images"]
    assert item["status"] == "failed" and item["seconds"] > 0
    if not stay_down:  # dockwright (or the engine, seeing its client go) removed the build's container
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(container)


def test_engine_lost_during_a_check(infra: Infra, docker_client: docker.DockerClient, tmp_path: Path,
                                    cleanup: list[str]) -> None:
    proxy = CuttingProxy(b"/wait", request=True)
    name = unique("lostcheck")
    root = project(tmp_path, proxy.port, name, f"""  slow:
    parent_image: {infra.busybox}
    checks: ["sleep 30 # {name}"]""")
    try:
        result = dockwright("build", "--json", cwd=root)
    finally:
        proxy.close()
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    *errors, summary = result.stderr.splitlines()[-3:]
    assert errors == ["error: image 'slow' failed",
                      f"  lost the Docker engine at tcp://127.0.0.1:{proxy.port} (builder 'cut') during the check "
                      f"sleep 30 # {name}: the connection broke"], result.stderr
    assert re.fullmatch(r"0 built, 0 reused, 1 failed, 0 skipped in \d+\.\d s on cut", summary), summary
    assert json.loads(result.stdout)["images"][0]["seconds"] > 0
    checks = [c for c in docker_client.containers.list(all=True) if name in " ".join(c.attrs["Args"])]
    assert checks == []  # the check's container is gone


# -- a real engine killed mid-build ------------------------------------------------------------------------------

DOOMED = infra_module.DoomedEngine("doomed")


def test_engine_killed_during_a_build(infra: Infra, tmp_path: Path) -> None:
    """DOCKER_HOST names a dockerd that is killed (SIGKILL) while a RUN step runs: nothing can be cleaned up, and
    the message says which container is left and how to remove it once the engine is back."""
    DOOMED.stop()  # one left over by an interrupted earlier run
    engine = DOOMED.start()
    name = unique("killed")
    try:
        with contextlib.closing(DOOMED.client()) as client:
            infra_module.ensure_busybox_image(client)
        root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  slow:
    parent_image: {infra.busybox}
    run: ["sleep 60 && echo {name}"]
runner: {{environment: slow}}
"""})
        proc = subprocess.Popen([sys.executable, "-m", "compiler", "build", "--json"], cwd=root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "DOCKER_HOST": DOOMED.url, "NO_COLOR": "1"})
        with contextlib.closing(DOOMED.client()) as client:
            deadline = time.monotonic() + 120
            while not [c for c in client.containers.list() if name in " ".join(c.attrs["Args"])]:
                assert time.monotonic() < deadline and proc.poll() is None, "the build never started its RUN"
                time.sleep(0.2)
        engine.kill()  # SIGKILL: no goodbye to its clients
        engine.wait()
        DOOMED.containerd_gone()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, err
        assert "Traceback" not in err
        container = re.search(r"its build container ([0-9a-f]{12}) could not be removed", err)
        assert container, err
        cid = container.group(1)
        dockerfile = (root / "generated/images/slow/Dockerfile").read_text().splitlines()
        line = dockerfile.index(f"RUN sleep 60 && echo {name}") + 1
        *errors, summary = err.splitlines()[-6:]
        assert errors == [
            f"error: image 'slow' failed at generated/images/slow/Dockerfile:{line}",
            f"  RUN sleep 60 && echo {name}",
            f"  lost the Docker engine at {DOOMED.url} (builder 'local') during the build: the connection broke",
            f"  its build container {cid} could not be removed: the engine does not answer",
            f"  hint: docker rm -f {cid} once the engine is back"], err
        assert re.fullmatch(r"0 built, 0 reused, 1 failed, 0 skipped in \d+\.\d s on local", summary), summary
        assert json.loads(out)["images"][0]["seconds"] > 0

        # once the engine is back, the container is there, and the hint removes it
        DOOMED.start()
        with contextlib.closing(DOOMED.client()) as client:
            assert client.containers.get(cid).id.startswith(cid)
            client.api.remove_container(cid, force=True)
    finally:
        DOOMED.stop()
        DOOMED.remove_bridge()
