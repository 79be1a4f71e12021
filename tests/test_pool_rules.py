"""`type: pool` without an engine: each mistake in a pool's definition is a located error, the manifest records the
members, a pool builds only what every member can, and the placement rule (a pure function) starts every image once,
after its parent, within each member's `--jobs` slots, whatever order images finish in and whichever members go
down. The builds themselves are in tests/builders/test_pool.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import builders
from compiler.builders.base import Job
from compiler.builders.pool import DONE, Placement, Seat, place
from compiler.errors import UsageError
from compiler.manifest import Manifest
from helpers import invoke

PROJECT = """version: 1
project: pools
environments:
  e: {python: "3.11"}
runner: {environment: e}
"""


def errors(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "dockwright.yaml").write_text(text)
    result = invoke("validate", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.returncode == 1, result.stderr
    return [line for line in result.stderr.splitlines() if ": error: " in line]


def test_each_mistake_in_a_pool_is_a_located_error(tmp_path: Path) -> None:
    assert errors(tmp_path, PROJECT + """builders:
  a: {type: docker}
  b: {type: buildah, members: [a]}
  p: {type: pool, members: [a, b, a, p, q, p2], url: "tcp://x:1", network: host}
  p2: {type: pool, members: []}
  p3: {type: pool, proxy: {http: "http://proxy:3128"}}
""") == [
        "dockwright.yaml:8:22: error: builder 'b' has type buildah, which takes no members (members are for a builder "
        "of type pool, which spreads a build over other builders)",
        "dockwright.yaml:9:13: error: pool 'p' needs the project's registry, which carries images between its members "
        "(add `registry: host:port/path` to dockwright.yaml)",
        "dockwright.yaml:9:35: error: builder 'a' is listed twice in the members of pool 'p' (first at line 9; remove "
        "one)",
        "dockwright.yaml:9:38: error: pool 'p' lists itself as a member (members are the builders it spreads a build "
        "over: docker, podman or buildah)",
        "dockwright.yaml:9:41: error: unknown builder 'q' (defined builders: a, b)",
        "dockwright.yaml:9:44: error: member 'p2' of pool 'p' is a pool itself (list the members of 'p2' instead)",
        "dockwright.yaml:9:49: error: builder 'p' has type pool, which takes no url (a pool builds on its members: "
        "give the url to the member builders)",
        "dockwright.yaml:9:67: error: builder 'p' has type pool, which takes no network (a pool builds on its "
        "members: give the network to the member builders)",
        "dockwright.yaml:10:14: error: pool 'p2' needs the project's registry, which carries images between its "
        "members (add `registry: host:port/path` to dockwright.yaml)",
        "dockwright.yaml:10:20: error: pool 'p2' has no members (list the builders it spreads a build over: members: "
        "[local, ci])",
        "dockwright.yaml:11:3: error: pool 'p3' has no members (list the builders it spreads a build over: members: "
        "[local, ci])",
        "dockwright.yaml:11:14: error: pool 'p3' needs the project's registry, which carries images between its "
        "members (add `registry: host:port/path` to dockwright.yaml)",
        "dockwright.yaml:11:20: error: builder 'p3' has type pool, which takes no proxy (a pool builds on its "
        "members: give the proxy to the member builders)",
    ]


def test_members_must_be_names(tmp_path: Path) -> None:
    assert errors(tmp_path, PROJECT + """registry: 127.0.0.1:5000/x
builders:
  a: {type: docker}
  p: {type: pool, members: a}
""") == ["dockwright.yaml:9:28: error: 'members' in builder 'p' must be a list, not a string (write a list: [a])"]


def test_a_pool_is_recorded_with_its_members(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(PROJECT + """registry: 127.0.0.1:5000/x
builders:
  local: {type: docker}
  bh: {type: buildah}
  both: {type: pool, members: [bh, local]}
default_builder: both
""")
    result = invoke("compile", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "generated/manifest.json").read_text())
    assert data["builders"] == {
        "bh": {"type": "buildah", "url": None, "tls": {}, "proxy": {}},
        "both": {"type": "pool", "url": None, "tls": {}, "proxy": {}, "members": ["bh", "local"]},
        "local": {"type": "docker", "url": None, "tls": {}, "proxy": {}}}
    manifest = Manifest.read(tmp_path / "generated/manifest.json")
    where = builders.endpoint(manifest, tmp_path, None)
    assert (where.type, [m.name for m in where.members], [m.type for m in where.members]) == (
        "pool", ["bh", "local"], ["buildah", "docker"])
    # a pool builds what every member can: cache mounts need buildah or podman, and local is docker
    job = Job("app", "pools-app:1", None, "Dockerfile", ".", (), None, (), "pools", mounts=True)
    with pytest.raises(UsageError) as raised:
        builders.require(where, [job])
    assert str(raised.value) == (
        "builder 'both' (type pool) cannot build RUN --mount (cache mounts), which image 'app' needs\n"
        "hint: build on a builder of type buildah or podman (builders: in the project file, then --builder NAME), or "
        "remove cache_mounts and secrets")


# -- placement -----------------------------------------------------------------------------------------------------


def test_an_image_goes_to_the_member_holding_its_parent_else_the_least_busy() -> None:
    a, b, c = Seat("a", 2, load=1, holds={"base"}), Seat("b", 2, load=1), Seat("c", 2)
    assert place("base", [a, b, c]) is a  # holds the parent, a slot is free
    a.load = 2
    assert place("base", [a, b, c]) is c  # full: the least busy
    assert place(None, [a, b, c]) is c
    c.up = False
    assert place("base", [a, b, c]) is b
    b.load = 2
    assert place("base", [a, b, c]) is None


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[str], dict[str, str | None], int, int, list[int]]:
    """A DAG in build order (each image's parent earlier, or outside the project), members, slots, and choices."""
    n = draw(st.integers(1, 14))
    order = [f"i{k}" for k in range(n)]
    parents: dict[str, str | None] = {}
    for k, name in enumerate(order):
        parents[name] = draw(st.one_of(st.none(), st.sampled_from(order[:k]))) if k else None
    return order, parents, draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.lists(st.integers(0, 99),
                                                                                            max_size=80))


@settings(max_examples=300, deadline=None)
@given(runs())
def test_placement_starts_each_image_once_after_its_parent_within_each_members_slots(
        run: tuple[list[str], dict[str, str | None], int, int, list[int]]) -> None:
    order, parents, n_members, slots, choices = run
    seats = [Seat(f"m{k}", slots) for k in range(n_members)]
    placement = Placement(order, parents, seats)
    finished: dict[str, str] = {}
    running: dict[str, Seat] = {}
    started: list[str] = []
    again: set[str] = set()
    pick = iter(choices)
    while len(finished) < len(order):
        for name, seat in placement.assign(finished):
            assert name not in running and name not in finished
            assert seat.up and seat.load <= seat.slots
            assert parents[name] is None or finished.get(parents[name] or "") in DONE
            assert name not in started or name in again  # once, but for an image whose member went down
            again.discard(name)
            started.append(name)
            running[name] = seat
        assert all(seat.load == sum(1 for s in running.values() if s is seat) for seat in seats)
        assert running, "images wait while no member works"  # a member is always up here
        choice = next(pick, 0)
        name = sorted(running)[choice % len(running)]
        seat = running.pop(name)
        placement.release(seat)
        if choice % 7 == 6 and sum(s.up for s in seats) > 1 and seat.up:  # its member goes down
            seat.up = False
            seat.holds.clear()
            placement.again(name)
            again.add(name)
            continue
        finished[name] = "failed" if choice % 5 == 4 else "built"
        seat.holds.add(name)
        for child in order:  # a failed image skips its descendants
            if child not in finished and parents[child] in finished and finished[parents[child] or ""] not in DONE:
                finished[child] = "skipped"
    assert set(started) == {name for name, status in finished.items() if status in ("built", "failed")}


def test_a_pool_none_of_whose_members_answers_is_one_line_and_exit_3(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(PROJECT + """registry: 127.0.0.1:5000/x
builders:
  a: {type: docker, url: "tcp://127.0.0.1:1"}
  b: {type: podman, url: "tcp://127.0.0.1:2"}
  both: {type: pool, members: [a, b]}
default_builder: both
""")
    result = invoke("build", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: no member of pool 'both' can be reached: cannot reach the Docker engine at tcp://127.0.0.1:1 (builder "
        "'a'): Connection refused; check that the engine listens there, or pick another builder with --builder; cannot "
        "reach the Docker engine at tcp://127.0.0.1:2 (builder 'b'): Connection refused; check that the engine listens "
        "there, or pick another builder with --builder")
    assert "Traceback" not in result.stderr


# -- the schedule's side of a member going down (the engines' side is in tests/builders/test_pool.py) ----------------


def _pool_run(lost_on: set[str], jobs: list[Job]) -> tuple[list[tuple[str, str, str | None, str]], dict[str, str]]:
    """A pool of members a and b whose images finish at once: `built`, or lost when their member is in lost_on."""
    import time
    import types

    from compiler.builders.base import Endpoint, Outcome
    from compiler.builders.pool import Pool
    from compiler.builders.schedule import Lost, Options, _Run

    def fake(name: str) -> object:
        return types.SimpleNamespace(endpoint=types.SimpleNamespace(name=name, proxy={}))

    pool = Pool(Endpoint("p", "pool", None, {}, {}, Path(".")), [("a", fake("a")), ("b", fake("b"))])  # type: ignore[list-item]

    class Quick(_Run):
        def one(self, job: Job, seat: Seat) -> Outcome | Lost:
            if seat.name in lost_on:
                time.sleep(0.5 if seat.name == "b" else 0)  # a goes down first
                return Lost(job.name, seat.name, f"lost the Docker engine at {seat.name}: the connection broke")
            return Outcome(job.name, job.tag, "built")

    outcomes = Quick(pool, jobs, Path("."), Options(jobs=1), lambda p: None).run()
    return [(o.name, o.status, o.builder, o.message) for o in outcomes], pool.down


def _job(name: str, parent: str | None = None) -> Job:
    return Job(name, f"p-{name}:0", f"r/p-{name}:0", f"out/images/{name}/Dockerfile", ".", (), parent, (), "p")


def test_an_image_whose_member_goes_down_is_built_on_another() -> None:
    jobs = [_job("base"), _job("c1", "base"), _job("c2", "base")]
    outcomes, down = _pool_run({"a"}, jobs)
    assert outcomes == [("base", "built", "b", ""), ("c1", "built", "b", ""), ("c2", "built", "b", "")]
    assert down == {"a": "lost the Docker engine at a: the connection broke"}


def test_when_every_member_is_down_what_is_left_fails_and_its_children_are_skipped() -> None:
    jobs = [_job("base"), _job("c1", "base"), _job("other")]
    outcomes, down = _pool_run({"a", "b"}, jobs)
    # -j 1: base on a, other on b; a goes down (base waits for a member), then b (other fails where it was lost)
    assert outcomes == [
        ("base", "failed", None, "every member of pool 'p' is down"),
        ("c1", "skipped", None, "its parent image base failed"),
        ("other", "failed", "b", "lost the Docker engine at b: the connection broke")]
    assert down == {"a": "lost the Docker engine at a: the connection broke",
                    "b": "lost the Docker engine at b: the connection broke"}


def test_members_without_a_type_say_to_add_type_pool(tmp_path: Path) -> None:
    assert errors(tmp_path, PROJECT + "builders:\n  a: {type: docker}\n  all: {members: [a]}\n") == [
        "dockwright.yaml:8:9: error: builder 'all' has no type, so it is a docker builder, which takes no members "
        "(members are for a builder of type pool, which spreads a build over other builders: add `type: pool`)"]
