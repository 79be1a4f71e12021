"""`dockwright build` on real engines with BusyBox images: order, reuse, failure, checks, push, remote, proxies."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest

from helpers import run_cli
from infra import Infra

KEY_LABEL = "io.dockwright.build-key"


def dockwright(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """run_cli with room for real builds."""
    return run_cli(*args, cwd=cwd, env=env, timeout=timeout)


def statuses(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    data = json.loads(result.stdout)
    return {item["image"]: item["status"] for item in data["images"]}


def unique(prefix: str) -> str:
    """A project name no earlier run used, so that nothing is reused from a previous test run."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def isolated(yaml: str) -> str:
    """Images are content-addressed across projects, so each environment on a parent image gets a label
    naming the test's project: nothing built by an earlier test or run is reused by accident."""
    match = re.search(r"^project: (\S+)$", yaml, re.MULTILINE)
    if not match:
        return yaml
    return re.sub(r"^(\s+)(parent_image: .*)$", rf"\1\2\n\1labels: {{dockwright-test: {match.group(1)}}}", yaml,
                  flags=re.MULTILINE)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        if rel == "dockwright.yaml":
            text = isolated(text)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def three_images(busybox: str, name: str) -> dict[str, str]:
    return {
        "dockwright.yaml": f"""
version: 1
project: {name}
environments:
  base:
    parent_image: {busybox}
    workdir: /app
    copy: [app/]
    checks: ["cat /app/app/hello.txt"]
  child:
    extends: base
    run: ["echo child > /child"]
    checks: ["test -f /child"]
  other:
    parent_image: {busybox}
    run: ["echo other > /other"]
runner: {{environment: base}}
server: {{environment: child}}
pipelines:
  p: {{environment: other, steps: {{a: {{}}}}}}
""",
        "app/hello.txt": "hello\n",
        ".dockerignore": "app/*.tmp\n",
    }


def test_build_reuse_and_labels(infra: Infra, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    name = unique("reuse")
    root = write(tmp_path, three_images(infra.busybox, name))
    first = dockwright("build", "--json", cwd=root)
    assert first.returncode == 0, first.stderr
    assert statuses(first) == {"base": "built", "child": "built", "other": "built"}
    manifest = json.loads((root / "generated/manifest.json").read_text())
    for item in json.loads(first.stdout)["images"]:
        image = docker_client.images.get(item["tag"])
        assert image.labels[KEY_LABEL] == item["build_key"]
        assert image.labels["io.dockwright.image"] == item["image"]
        assert item["tag"] == manifest["images"][item["image"]]["tag"]
    assert docker_client.containers.list(all=True, filters={"ancestor": manifest["images"]["base"]["tag"]}) == []

    second = dockwright("build", cwd=root)
    assert second.returncode == 0, second.stderr
    assert re.fullmatch(r"nothing to build: all 3 images are up to date \(0 built, 3 reused, 0 failed, 0 skipped "
                        r"in \d+\.\d s on local\)", second.stdout.splitlines()[-1]), second.stdout

    # a file the context ignores changes nothing; a copied file rebuilds its image and the child
    (root / "app/scratch.tmp").write_text("ignored")
    assert statuses(dockwright("build", "--json", cwd=root)) == {"base": "reused", "child": "reused",
                                                                   "other": "reused"}
    (root / "app/hello.txt").write_text("hello again\n")
    assert statuses(dockwright("build", "--json", cwd=root)) == {"base": "built", "child": "built",
                                                                   "other": "reused"}
    (root / "app/hello.txt").write_text("hello\n")  # back: the first images are still there
    assert statuses(dockwright("build", "--json", cwd=root)) == {"base": "reused", "child": "reused",
                                                                   "other": "reused"}
    assert statuses(dockwright("build", "--json", "--no-reuse", cwd=root)) == {
        "base": "built", "child": "built", "other": "built"}
    only = dockwright("build", "--json", "child", cwd=root)
    assert statuses(only) == {"base": "reused", "child": "reused"}
    assert statuses(dockwright("build", "--json", "p", cwd=root)) == {"other": "reused"}  # a pipeline's images

    # one more environment that dedupes into `other` changes its Dockerfile's header comment only: no rebuild
    yaml = (root / "dockwright.yaml").read_text()
    twin = (f"  other-too:\n    parent_image: {infra.busybox}\n    labels: {{dockwright-test: {name}}}\n"
            f"    run: [\"echo other > /other\"]\n")
    (root / "dockwright.yaml").write_text(yaml.replace("runner:", twin + "runner:").replace(
        "steps: {a: {}}", "steps: {a: {}, b: {environment: other-too}}"))
    dedupe = dockwright("build", "--json", cwd=root)
    assert statuses(dedupe) == {"base": "reused", "child": "reused", "other": "reused"}, dedupe.stderr
    assert "environment 'other-too'" in (root / "generated/images/other/Dockerfile").read_text()

    # a new check is part of the key: the image is checked again
    (root / "dockwright.yaml").write_text((root / "dockwright.yaml").read_text().replace(
        '    run: ["echo other > /other"]\n  other-too', '    run: ["echo other > /other"]\n'
        '    checks: ["test -f /other"]\n  other-too'))
    checked = dockwright("build", "--json", cwd=root)
    assert statuses(checked) == {"base": "reused", "child": "reused", "other": "built"}, checked.stderr


def test_copy_left_out_by_dockerignore_is_an_error(infra: Infra, tmp_path: Path) -> None:
    files = three_images(infra.busybox, unique("ignored"))
    files[".dockerignore"] = "app/\n"
    root = write(tmp_path, files)
    result = dockwright("build", "--json", cwd=root)
    assert result.returncode == 3
    assert statuses(result) == {"base": "failed", "child": "skipped", "other": "built"}
    assert result.stderr.split("error: ", 1)[1].splitlines()[:3] == [
        "image 'base' failed",
        "  app/ is copied by generated/images/base/Dockerfile, but .dockerignore leaves it out of the build context",
        "  hint: remove the pattern that matches it, or add '!app' after it"]


def test_plain_progress_and_summary(infra: Infra, tmp_path: Path) -> None:
    name = unique("plain")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  solo:
    parent_image: {infra.busybox}
    run: ["echo solo > /solo"]
    checks: ["test -f /solo"]
runner: {{environment: solo}}
"""})
    result = dockwright("build", cwd=root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # USER root: compile does not know the user of a parent image from outside the project
    assert lines[:3] == [f"solo  step 1/7: FROM {infra.busybox}", "solo  step 2/7: USER root",
                         "solo  step 3/7: RUN echo solo > /solo"]
    assert lines[3] == f"solo  step 4/7: LABEL dockwright-test=\"{name}\""
    assert lines[4].startswith("solo  step 5/7: LABEL io.dockwright.build-key=sha256:")
    assert lines[5:9] == ["solo  step 6/7: LABEL io.dockwright.image=solo",
                          f"solo  step 7/7: LABEL io.dockwright.project={name}",
                          "solo  check 1/1: test -f /solo",
                          "solo  built"]
    assert lines[9].split() == ["image", "status", "time", "tag", "build", "key"]
    assert re.fullmatch(rf"solo   built   \d+\.\ds  {name}-solo:[0-9a-f]{{12}}  [0-9a-f]{{12}}", lines[10]), lines[10]
    assert re.fullmatch(r"1 built, 0 reused, 0 failed, 0 skipped in \d+\.\d s on local", lines[11])
    assert len(lines) == 12


def test_failure_skips_dependents_and_rerun_reuses(infra: Infra, tmp_path: Path) -> None:
    name = unique("fail")
    yaml = f"""
version: 1
project: {name}
environments:
  good:
    parent_image: {infra.busybox}
    run: ["echo good > /good"]
  bad:
    parent_image: {infra.busybox}
    run: ["echo preparing", "echo about to fail; EXIT"]
  bad-child:
    extends: bad
    run: ["echo child"]
runner: {{environment: good}}
server: {{environment: bad-child}}
"""
    root = write(tmp_path, {"dockwright.yaml": yaml.replace("EXIT", "exit 7")})
    result = dockwright("build", cwd=root)
    assert result.returncode == 3
    dockerfile = (root / "generated/images/bad/Dockerfile").read_text().splitlines()
    line = dockerfile.index("RUN echo about to fail; exit 7") + 1
    errors = result.stderr.split("error: ", 1)[1]
    assert errors == (
        f"image 'bad' failed at generated/images/bad/Dockerfile:{line}\n"
        "  RUN echo about to fail; exit 7\n"
        "  The command '/bin/sh -c echo about to fail; exit 7' returned a non-zero code: 7\n"
        "  last lines of the log:\n"
        "  | about to fail\n")
    summary = result.stdout.splitlines()[-1]
    assert re.fullmatch(r"1 built, 0 reused, 1 failed, 1 skipped in \d+\.\d s on local", summary), summary
    assert "bad-child  skipped: its parent image bad failed" in result.stdout.splitlines()
    verbose = dockwright("build", "--verbose", "bad", cwd=root)  # every line the build prints, as it prints it
    assert verbose.returncode == 3
    assert "bad  | about to fail" in verbose.stdout.splitlines()

    write(root, {"dockwright.yaml": yaml.replace("EXIT", "exit 0")})
    again = dockwright("build", "--json", cwd=root)
    assert again.returncode == 0, again.stderr
    assert statuses(again) == {"good": "reused", "bad": "built", "bad-child": "built"}


def test_failing_check_fails_the_image_and_is_never_reused(infra: Infra, docker_client: docker.DockerClient,
                                                            tmp_path: Path) -> None:
    name = unique("check")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  checked:
    parent_image: {infra.busybox}
    checks: ["echo checking", "echo 'no such thing' >&2; exit 4"]
runner: {{environment: checked}}
"""})
    for _ in range(2):
        result = dockwright("build", "--json", cwd=root)
        assert result.returncode == 3
        assert statuses(result) == {"checked": "failed"}
        *errors, summary = result.stderr.split("error: ", 1)[1].splitlines()
        assert errors == ["image 'checked' failed",
                          "  check failed (exit 4): echo 'no such thing' >&2; exit 4",
                          "  last lines of the log:",
                          "  | no such thing"]
        assert re.fullmatch(r"0 built, 0 reused, 1 failed, 0 skipped in \d+\.\d s on local", summary)
        tag = json.loads(result.stdout)["images"][0]["tag"]
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(tag)
    # the check containers are gone
    assert [c for c in docker_client.containers.list(all=True) if name in str(c.image.tags)] == []


def test_remote_engine_over_tls(infra: Infra, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    name = unique("remote")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  far:
    parent_image: {infra.busybox}
    run: ["echo far > /far"]
    checks: ["test -f /far"]
runner: {{environment: far}}
builders:
  local: {{type: docker}}
  remote:
    type: docker
    url: {infra.remote_url}
    tls: {{ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}}
"""})
    (root / "certs").mkdir()
    for file in ("ca.pem", "cert.pem", "key.pem"):
        shutil.copy(infra.remote_tls_dir / file, root / "certs" / file)
    result = dockwright("build", "--builder", "remote", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["builder"], data["endpoint"]) == ("remote", infra.remote_url)
    tag = data["images"][0]["tag"]
    assert infra.remote_client().images.get(tag).labels[KEY_LABEL] == data["images"][0]["build_key"]
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
    again = dockwright("build", "--builder", "remote", "--json", cwd=root)
    assert statuses(again) == {"far": "reused"}


def test_unreachable_engine_is_one_line(infra: Infra, tmp_path: Path) -> None:
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {unique("gone")}
environments:
  e: {{parent_image: {infra.busybox}}}
runner: {{environment: e}}
builders:
  gone: {{type: docker, url: "tcp://127.0.0.1:9"}}
"""})
    result = dockwright("build", cwd=root)
    assert result.returncode == 3
    assert result.stderr.splitlines()[1:] == [
        "error: cannot reach the Docker engine at tcp://127.0.0.1:9 (builder 'gone'): Connection refused; "
        "check that the engine listens there, or pick another builder with --builder"]

    no_builders = write(tmp_path / "default", {"dockwright.yaml": f"""
version: 1
project: {unique("nosock")}
environments:
  e: {{parent_image: {infra.busybox}}}
runner: {{environment: e}}
"""})
    socket = dockwright("build", cwd=no_builders, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert socket.returncode == 3
    assert socket.stderr.splitlines()[1:] == [
        "error: cannot reach the Docker engine at unix:///nonexistent/docker.sock (builder 'local'): no engine "
        "listens there (the socket does not exist); start dockerd, set DOCKER_HOST, or pick another builder with "
        "--builder"]


def test_push_to_registry_and_pull_instead_of_building(infra: Infra, docker_client: docker.DockerClient,
                                                       tmp_path: Path) -> None:
    name = unique("push")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
registry: {infra.registry}/dwtest
environments:
  shipped:
    parent_image: {infra.busybox}
    run: ["echo shipped > /shipped"]
runner: {{environment: shipped}}
"""})
    first = dockwright("build", "--push", "--json", cwd=root)
    assert first.returncode == 0, first.stderr
    item = json.loads(first.stdout)["images"][0]
    push_tag = json.loads((root / "generated/manifest.json").read_text())["images"]["shipped"]["push_tag"]
    assert item["pushed"] == push_tag
    repository, _, tag = push_tag.partition("/")[2].rpartition(":")
    with urllib.request.urlopen(f"http://{infra.registry}/v2/{repository}/tags/list", timeout=10) as response:
        assert json.load(response) == {"name": repository, "tags": [tag]}
    # --json names the pushed image by the digest the registry stored it under
    asked = urllib.request.Request(f"http://{infra.registry}/v2/{repository}/manifests/{tag}", method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(asked, timeout=10) as response:
        assert item["digest"] == response.headers["Docker-Content-Digest"]
    assert item["digest"] in docker_client.images.get(push_tag).attrs["RepoDigests"][0]

    # a fresh engine (here: the same one, emptied of the image) pulls the pushed image instead of building
    docker_client.images.remove(item["tag"], force=True)
    docker_client.images.remove(push_tag, force=True)
    second = dockwright("build", "--push", "--json", cwd=root)
    assert second.returncode == 0, second.stderr
    assert statuses(second) == {"shipped": "pulled"}
    assert docker_client.images.get(item["tag"]).labels[KEY_LABEL] == item["build_key"]
    assert json.loads(second.stdout)["images"][0]["digest"] == item["digest"]  # the pull's digest: the same image

    no_registry = write(tmp_path / "plain", {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  e: {{parent_image: {infra.busybox}}}
runner: {{environment: e}}
"""})
    refused = dockwright("build", "--push", cwd=no_registry)
    assert refused.returncode == 2
    assert refused.stderr == ("error: --push needs a registry: add `registry: host:port/path` to dockwright.yaml\n")


def test_interrupt_stops_cleanly(infra: Infra, tmp_path: Path) -> None:
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {unique("stop")}
environments:
  slow:
    parent_image: {infra.busybox}
    run: ["sleep 120 && echo {unique('never')}"]
runner: {{environment: slow}}
"""})
    # SIG_DFL in the child: a test run started in the background inherits SIGINT ignored, and Python then
    # keeps it ignored, as it should for a background job.
    proc = subprocess.Popen([sys.executable, "-m", "compiler", "build"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    for line in proc.stdout:
        if "RUN sleep 120" in line:
            break
    time.sleep(1)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert re.search(r"\ninterrupted after \d+\.\d s: 0 built, 0 reused, 0 failed, 0 skipped, 1 not finished "
                     r"\(what was built is kept and reused next time\)\n$", err), err
    assert time.monotonic() - started < 10


def test_proxy_reaches_the_build_and_never_the_image(infra: Infra, docker_client: docker.DockerClient,
                                                     tmp_path: Path) -> None:
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {unique("proxy")}
environments:
  behind:
    parent_image: {infra.busybox}
    run: ['case "$HTTP_PROXY" in *@127.0.0.1:3128) ;; *) exit 1 ;; esac']
runner: {{environment: behind}}
builders:
  local:
    type: docker
    proxy: {{http: "${{DW_TEST_PROXY}}", no_proxy: localhost}}
"""})
    secret = "http://build-user:s3cret-token@127.0.0.1:3128"
    missing = dockwright("build", cwd=root)
    assert missing.returncode == 2
    assert missing.stderr.endswith("error: builder proxy uses ${DW_TEST_PROXY} (in 'http'), not set in this "
                                   "environment\nhint: export DW_TEST_PROXY=... before 'dockwright build'\n")
    result = dockwright("build", "--json", cwd=root, env={"DW_TEST_PROXY": secret})
    assert result.returncode == 0, result.stderr
    tag = json.loads(result.stdout)["images"][0]["tag"]
    image = docker_client.images.get(tag)
    history = json.dumps(image.history())
    assert "s3cret" not in history and "s3cret" not in json.dumps(image.attrs)
    assert "s3cret" not in "".join(p.read_text() for p in (root / "generated").rglob("*") if p.is_file())


def test_terminal_gets_a_live_view_and_a_table(infra: Infra, tmp_path: Path) -> None:
    import pty

    name = unique("tty")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  shown:
    parent_image: {infra.busybox}
    run: ["sleep 1"]
runner: {{environment: shown}}
"""})
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: dockwright on a terminal
        os.chdir(root)
        os.execve(sys.executable, [sys.executable, "-m", "compiler", "build"], {**env, "COLUMNS": "120"})
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert "\x1b[" in text  # colour and cursor movement: the live view redraws in place
    assert re.search(r"shown\s+building\s+3/7\s+RUN sleep 1", plain), plain  # a frame of the live view
    assert re.search(rf"shown\s+built\s+\d+\.\ds\s+{name}-shown:[0-9a-f]{{12}}", plain)
    assert re.search(r"1 built, 0 reused, 0 failed, 0 skipped in \d+\.\d s on local", plain)
