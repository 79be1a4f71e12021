"""`type: pool` on real engines: one build spread over dockerd, podman and buildah, images carried between them by the
registry; a member that cannot be reached, or is killed mid-run, is marked down and its images go elsewhere; a second
run builds nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import infra as infra_module

from infra import Infra
from test_build import dockwright, statuses, unique, write

CHILDREN = 6


def wide(name: str, busybox: str, registry: str, builders: str, sleep: int = 0) -> str:
    """One base and CHILDREN images built on it, and the pool named `pool` of the given builders."""
    children = "".join(f"  c{i}: {{extends: base, run: [\"{f'sleep {sleep}; ' if sleep else ''}echo {i} > /c\"]}}\n"
                       for i in range(1, CHILDREN + 1))
    return f"""
version: 1
project: {name}
registry: {registry}/dwpool
environments:
  base:
    parent_image: {busybox}
    run: ["echo base > /base"]
{children}runner: {{environment: base}}
builders:
{builders}default_builder: pool
"""


def members(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {item["image"]: item["builder"] for item in json.loads(result.stdout)["images"]}


def test_a_pool_spreads_a_wide_dag_over_every_member_and_a_second_run_builds_nothing(
        infra: Infra, podman_url: str, tmp_path: Path) -> None:
    name = unique("pool")
    root = write(tmp_path, {"dockwright.yaml": wide(name, infra.busybox, infra.registry, f"""  local: {{type: docker}}
  podman: {{type: podman, url: "{podman_url}"}}
  buildah: {{type: buildah}}
  nowhere: {{type: docker, url: "tcp://127.0.0.1:1"}}
  pool: {{type: pool, members: [local, podman, buildah, nowhere]}}
""")})
    first = dockwright("build", "--jobs", "1", "--json", cwd=root)
    assert first.returncode == 0, first.stderr
    assert set(statuses(first).values()) == {"built"}
    where = members(first)
    # -j 1: the base goes to the first member; its first child to the member holding it, the next two to the
    # least busy others (each then pulls the base from the registry by its push tag)
    assert (where["base"], where["c1"], where["c2"], where["c3"]) == ("local", "local", "podman", "buildah")
    assert set(where.values()) == {"local", "podman", "buildah"}
    data = json.loads(first.stdout)
    assert data["builder"] == "pool" and data["endpoint"] == "pool of local, podman, buildah, nowhere"
    down = ("cannot reach the Docker engine at tcp://127.0.0.1:1 (builder 'nowhere'): Connection refused; check that "
            "the engine listens there, or pick another builder with --builder")
    assert data["members"] == [
        {"builder": "local", "endpoint": infra.local_url, "down": None},
        {"builder": "podman", "endpoint": podman_url, "down": None},
        {"builder": "buildah", "endpoint": "buildah (this machine)", "down": None},
        {"builder": "nowhere", "endpoint": "tcp://127.0.0.1:1", "down": down}]
    assert all(item["pushed"] for item in data["images"])  # a pool pushes every image
    stderr = first.stderr.splitlines()
    assert f"warning: builder 'nowhere' of pool 'pool' is down: {down}" in stderr
    counts = {m: list(where.values()).count(m) for m in ("buildah", "local", "podman")}
    assert re.fullmatch(rf"7 built, 0 reused, 0 failed, 0 skipped, 7 pushed in \d+\.\d s on pool \(buildah "
                        rf"{counts['buildah']}, local {counts['local']}, podman {counts['podman']}\)", stderr[-1])

    again = dockwright("build", "--jobs", "1", cwd=root)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert "base  reused on local" in lines  # the plain lines name the member
    assert re.fullmatch(r"nothing to build: all 7 images are up to date \(0 built, 7 reused, 0 failed, 0 skipped, 7 "
                        r"pushed in \d+\.\d s on pool \(.*\)\)|0 built, \d reused, \d pulled, 0 failed, 0 skipped, 7 "
                        r"pushed in \d+\.\d s on pool \(.*\)", lines[-1]), lines[-1]
    # one member alone, with --push, pulls what others built: nothing is built anywhere
    alone = dockwright("build", "--builder", "podman", "--push", "--json", cwd=root)
    assert alone.returncode == 0, alone.stderr
    assert set(statuses(alone).values()) <= {"reused", "pulled"}


# -- a member killed mid-run: a dockerd of this test's own ---------------------------------------------------------

DOOMED = infra_module.DoomedEngine("pooldoom")


def test_a_member_killed_mid_run_is_marked_down_and_its_images_go_elsewhere(
        infra: Infra, podman_url: str, tmp_path: Path) -> None:  # podman_url: buildah's store has the base images
    DOOMED.stop()  # one left over by an interrupted earlier run
    engine = DOOMED.start()
    name = unique("pooldown")
    try:
        with contextlib.closing(DOOMED.client()) as client:
            infra_module.ensure_busybox_image(client)
            for left in client.containers.list(all=True):  # the build container an earlier run's kill left
                left.remove(force=True)
        # (podman and buildah share one image store here: the wide DAG above has both; this one has one of them)
        root = write(tmp_path, {"dockwright.yaml": wide(name, infra.busybox, infra.registry, f"""  doomed: {{type: docker, url: "{DOOMED.url}"}}
  local: {{type: docker}}
  buildah: {{type: buildah}}
  pool: {{type: pool, members: [doomed, local, buildah]}}
""", sleep=4)})
        proc = subprocess.Popen([sys.executable, "-m", "compiler", "build", "--jobs", "1", "--json"], cwd=root,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "NO_COLOR": "1"})
        with contextlib.closing(DOOMED.client()) as client:
            deadline = time.monotonic() + 120
            # a child's RUN (its sleep) runs on the doomed engine: the base is built and pushed
            while not [c for c in client.containers.list() if "sleep 4" in " ".join(c.attrs["Args"])]:
                assert time.monotonic() < deadline and proc.poll() is None, "no child was built on the doomed engine"
                time.sleep(0.2)
        engine.kill()  # SIGKILL: no goodbye to its clients
        engine.wait()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        data = json.loads(out)
        assert {item["image"]: item["status"] for item in data["images"]} == {
            "base": "built", **{f"c{i}": "built" for i in range(1, CHILDREN + 1)}}
        where = members(subprocess.CompletedProcess([], 0, out, err))
        assert where["base"] == "doomed"
        assert {where[f"c{i}"] for i in range(1, CHILDREN + 1)} == {"local", "buildah"}
        (down,) = [m for m in data["members"] if m["down"]]
        assert down["builder"] == "doomed"
        lost = (re.escape(f"lost the Docker engine at {DOOMED.url} (builder 'doomed') during the build: the "
                          "connection broke\n") +
                r"its build container ([0-9a-f]{12}) could not be removed: the engine does not answer\n"
                r"hint: docker rm -f \1 once the engine is back")
        assert re.fullmatch(lost, down["down"]), down["down"]
        assert f"warning: builder 'doomed' of pool 'pool' is down: {down['down']}" in err
        assert re.search(r"^7 built, 0 reused, 0 failed, 0 skipped, 7 pushed in \d+\.\d s on pool \(buildah \d, "
                         r"doomed 1, local \d\)$", err, re.MULTILINE), err
    finally:
        DOOMED.stop()
        DOOMED.remove_bridge()
