"""`dockwright export` writes only its own files: it replaces a file an earlier export wrote (so running it again
works), and refuses, with exit 1 and a message saying what to do, to replace or write through anything else: a
user's file, the project file, an included file, the lock, any input compile read, a file compile writes, a
directory, a symbolic link; a read-only folder is one clear line. Every file is checked before any is written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import bake, zenml_config
from compiler.emit import OutputError
from helpers import EXAMPLES, copy_project, invoke, tree

NOT_OURS = "exists and was not written by dockwright: export replaces only a file it wrote (move it away, or give " \
           "-o another path)"
INPUT = "is an input of the project (compile reads it): export never writes over it (give -o another path)"
COMPILED = "is a file `dockwright compile` writes: export never writes over it (give -o another path)"
LINK = "is a symbolic link: dockwright writes no file through one (move it away, or give -o another path)"
FOLDER = "is a directory (move it away, or give -o another path)"
NOT_A_FOLDER = "is a file, not a directory (move it away, or give -o another path)"


def listing(folder: Path) -> dict[str, Any]:
    """Every file (bytes), link (its target) and folder (None) below folder."""
    out: dict[str, Any] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = ("link", os.readlink(p)) if p.is_symlink() else None if p.is_dir() else p.read_bytes()
    return out


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """The quickstart example, compiled, its one pipeline named `dockwright` (so that a run configuration can be
    aimed at dockwright.yaml)."""
    root = copy_project(EXAMPLES / "quickstart", tmp_path / "q")
    text = (root / "dockwright.yaml").read_text(encoding="utf-8")
    (root / "dockwright.yaml").write_text(text.replace("  daily-report:\n", "  dockwright:\n"), encoding="utf-8")
    assert invoke("-q", "compile", cwd=root).returncode == 0
    return root


# format -> (the command for -o WHERE, the file it writes for WHERE)
FORMATS: dict[str, tuple[Callable[[str], list[str]], Callable[[str], str]]] = {
    "bake": (lambda where: ["-q", "export", "bake", "-o", where], lambda where: where),
    "zenml": (lambda where: ["-q", "export", "zenml", "--local", "-o", where], lambda where: f"{where}/dockwright.yaml"),
}


def _refused(root: Path, fmt: str, where: str, message: str) -> None:
    """export -o where exits 1 with exactly `error: message`, and nothing in the project changed."""
    before = listing(root)
    command, _ = FORMATS[fmt]
    done = invoke(*command(where), cwd=root)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"error: {message}\n")
    assert listing(root) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_users_file_is_never_replaced(quickstart: Path, fmt: str) -> None:
    _, target = FORMATS[fmt]
    path = quickstart / target("mine")
    path.parent.mkdir(parents=True, exist_ok=True)
    for text in ("print('training')\n", '{"group": {}, "target": {}}\n', "# my own run configuration\n", ""):
        path.write_text(text, encoding="utf-8")
        _refused(quickstart, fmt, "mine", f"{target('mine')} {NOT_OURS}")
        assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_project_file_is_never_replaced(quickstart: Path, fmt: str) -> None:
    _, target = FORMATS[fmt]
    where = "dockwright.yaml" if fmt == "bake" else "."
    _refused(quickstart, fmt, where, f"dockwright.yaml {INPUT}")
    # by another name: `..`, an absolute path, a hard link
    _refused(quickstart, fmt, "generated/../dockwright.yaml" if fmt == "bake" else "generated/..",
             f"dockwright.yaml {INPUT}")
    _refused(quickstart, fmt, str(quickstart / "dockwright.yaml") if fmt == "bake" else str(quickstart),
             f"dockwright.yaml {INPUT}")
    os.link(quickstart / "dockwright.yaml", quickstart / "src/dockwright.yaml")
    _refused(quickstart, fmt, "src/dockwright.yaml" if fmt == "bake" else "src", f"src/dockwright.yaml {INPUT}")


def test_the_lock_and_every_input_compile_read_are_never_replaced(quickstart: Path) -> None:
    for rel in ("dockwright.lock", "certs/proxy-ca.pem"):
        _refused(quickstart, "bake", rel, f"{rel} {INPUT}")
    (quickstart / "dockwright.lock").unlink()  # not there yet: still the lock's place
    assert invoke("-q", "compile", cwd=quickstart).returncode == 0
    _refused(quickstart, "bake", "dockwright.lock", f"dockwright.lock {INPUT}")


def test_an_included_file_is_never_replaced(tmp_path: Path) -> None:
    """The repro: `export zenml --local -o pipelines` where pipelines/*.yaml are included: nothing is written,
    not even the run configurations of the pipelines whose files are new."""
    root = copy_project(EXAMPLES / "platform", tmp_path / "platform")
    _refused(root, "zenml", "pipelines", f"pipelines/forecast.yaml {INPUT}")
    assert sorted(p.name for p in (root / "pipelines").iterdir()) == ["forecast.yaml", "ingest.yaml", "reports.yaml"]


def test_a_file_compile_writes_is_never_replaced(quickstart: Path) -> None:
    for rel in ("generated/manifest.json", "generated/images/base/Dockerfile", "generated/images/base/requirements.txt"):
        _refused(quickstart, "bake", rel, f"{rel} {COMPILED}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_previous_export_is_replaced(quickstart: Path, fmt: str) -> None:
    command, target = FORMATS[fmt]
    first = invoke(*command("out")[1:], cwd=quickstart)
    assert (first.returncode, first.stdout) == (0, f"{target('out')}: written\n")
    old = (quickstart / target("out")).read_bytes()
    text = (quickstart / "dockwright.yaml").read_text(encoding="utf-8")
    (quickstart / "dockwright.yaml").write_text(text.replace("pyyaml==6.0.2", "pyyaml==6.0.1"), encoding="utf-8")
    # the lock no longer matches: compile without it
    (quickstart / "dockwright.lock").unlink()
    again = invoke(*command("out")[1:], cwd=quickstart)
    assert (again.returncode, again.stdout) == (0, f"{target('out')}: written\n"), again.stderr
    new = (quickstart / target("out")).read_bytes()
    assert new != old
    # a merge conflict between two of its exports is still its own file
    (quickstart / target("out")).write_bytes(b"<<<<<<< ours\n" + old + b"=======\n" + new + b">>>>>>> theirs\n")
    done = invoke(*command("out")[1:], cwd=quickstart)
    assert (done.returncode, done.stdout) == (0, f"{target('out')}: written\n")
    assert (quickstart / target("out")).read_bytes() == new
    # ... but not when one side is the user's
    (quickstart / target("out")).write_bytes(b"<<<<<<< ours\n" + new + b"=======\nmine\n>>>>>>> theirs\n")
    _refused(quickstart, fmt, "out", f"{target('out')} {NOT_OURS}")
    assert os.stat(quickstart / target("out")).st_mode & 0o777 == 0o644


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_directory_or_a_file_in_the_way(quickstart: Path, fmt: str) -> None:
    _, target = FORMATS[fmt]
    (quickstart / target("out")).mkdir(parents=True)
    _refused(quickstart, fmt, "out", f"{target('out')} {FOLDER}")
    (quickstart / "plain.txt").write_text("mine\n")
    _refused(quickstart, fmt, "plain.txt/x", f"plain.txt {NOT_A_FOLDER}")
    if fmt == "zenml":
        _refused(quickstart, fmt, "plain.txt", f"plain.txt {NOT_A_FOLDER}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_never_through_a_symbolic_link(quickstart: Path, tmp_path: Path, fmt: str) -> None:
    _, target = FORMATS[fmt]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep\n")
    (quickstart / "linked").symlink_to(outside)  # a folder on the way
    _refused(quickstart, fmt, "linked/out", f"linked {LINK}")
    path = quickstart / target("out")
    path.parent.mkdir(parents=True, exist_ok=True)
    for to in (outside / "victim", outside / "absent"):  # the file itself: to a file, or dangling
        path.symlink_to(to)
        _refused(quickstart, fmt, "out", f"{target('out')} {LINK}")
        path.unlink()
    assert listing(outside) == {"victim": b"keep\n"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_read_only_folder(quickstart: Path, fmt: str, mounted: Callable[..., None]) -> None:
    _, target = FORMATS[fmt]
    folder = quickstart / Path(target("ro")).parent
    folder.mkdir(exist_ok=True)
    mounted("--bind", "-o", "ro", str(folder), str(folder))
    shown = target("ro")
    _refused(quickstart, fmt, "ro", f"cannot write {shown}: Read-only file system (the file system is read-only: "
                                    "make it writable, or give -o another path)")
    if fmt == "zenml":  # a folder export would make inside it
        _refused(quickstart, fmt, "ro/deeper", "cannot write ro/deeper/dockwright.yaml: Read-only file system (the "
                                               "file system is read-only: make it writable, or give -o another path)")


def test_the_folders_a_failed_write_made_are_removed(quickstart: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler import emit

    def full(*args: Any, **kwargs: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(emit, "_write_temp", full)
    _refused(quickstart, "bake", "a/b/c.json", "cannot write a/b/c.json: No space left on device (free some disk "
                                               "space)")
    assert not (quickstart / "a").exists()


# ---------------------------------------------------------------------------------------------------
# The class: whatever is at the path, export replaces it exactly when one of its own exports wrote it


IMAGE = st.from_regex(r"[a-z][a-z0-9]{0,5}([._-][a-z0-9]{1,4})?", fullmatch=True)


@st.composite
def bake_files(draw: st.DrawFn) -> str:
    names = draw(st.lists(IMAGE, min_size=1, max_size=4, unique=True))
    images: dict[str, Any] = {}
    for i, name in enumerate(names):
        parent = draw(st.none() | st.sampled_from(names[:i])) if i else None
        secrets = draw(st.dictionaries(st.sampled_from(["netrc", "pip"]),
                                       st.sampled_from([{"env": "X"}, {"file": "~/.netrc"}, {"file": "s.txt"}]),
                                       max_size=2))
        images[name] = {"name": name, "tag": f"p-{i}:{i:012x}", "push_tag": draw(st.none() | st.just(f"r/p-{i}:1")),
                        "dockerfile": f"generated/images/{name}/Dockerfile", "context": ".", "parent": parent,
                        "secrets": secrets}
    return bake.render({"project": draw(IMAGE), "images": images, "build_order": names})


@st.composite
def zenml_files(draw: st.DrawFn) -> str:
    steps = draw(st.dictionaries(IMAGE, st.sampled_from(["a", "b"]), max_size=4))
    own = draw(st.sampled_from([None, "a"]))
    pipeline = draw(IMAGE)
    manifest: Any = SimpleNamespace(source=draw(st.sampled_from(["dockwright.yaml", "ml/dockwright.yaml"])),
                                    pipelines={pipeline: SimpleNamespace(image=own, steps={
                                        name: SimpleNamespace(image=image) for name, image in steps.items()})})
    return zenml_config.render(manifest, pipeline, {"a": "x-a:1", "b": "reg:5000/x-b:2@sha256:" + "ab" * 32})


def _mutations(text: str) -> st.SearchStrategy[tuple[bytes, bool]]:
    """text changed as a hand or a tool would change it, and whether it is still export's file: a run
    configuration is while its first line is the header (as a generated Dockerfile is while it has its marker);
    a bake file (JSON has no comments) only while it is exactly what export writes; both with CRLF line ends."""
    data = text.encode()
    out = [(data.replace(b"\n", b"\r\n"), True), (b"\n" + data, False)]
    try:
        parsed = json.loads(text)
    except ValueError:
        out += [(data + b"# mine\n", True), (data[:-1], True), (data.replace(b"skip_build: true", b"x: 1"), True),
                (data.replace(b"dockwright export zenml", b"my own script", 1), False),
                (data.split(b"\n", 1)[1], False), (b"# " + data, False)]
    else:
        first = sorted(parsed["target"])[0]
        for change in ({"extra": {}}, {"target": {**parsed["target"], first: {**parsed["target"][first], "args": {}}}},
                       {"target": {**parsed["target"], first: {**parsed["target"][first], "labels": {}}}},
                       {"group": {"default": {"targets": []}}}, {"variable": {"HOME": {"default": "/root"}}}):
            out.append(((json.dumps({**parsed, **change}, indent=2, sort_keys=True) + "\n").encode(), False))
        out += [((json.dumps(parsed, indent=4, sort_keys=True) + "\n").encode(), False),
                (json.dumps(parsed).encode(), False), (data + b"# mine\n", False), (data[:-1], False),
                (data.replace(b"  ", b"   ", 1), False)]
    return st.sampled_from([(m, ours) for m, ours in out if m != data])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=10)


@st.composite
def existing(draw: st.DrawFn, fmt: str) -> tuple[bytes, bool]:
    """(bytes at the path, whether an export wrote them)."""
    own = draw(bake_files() if fmt == "bake" else zenml_files())
    kind = draw(st.sampled_from(["export", "conflict", "mutation", "conflict with a mutation", "bytes", "json"]))
    if kind == "export":
        return own.encode(), True
    if kind == "conflict":
        other = draw(bake_files() if fmt == "bake" else zenml_files())
        return b"<<<<<<< HEAD\n" + own.encode() + b"=======\n" + other.encode() + b">>>>>>> x\n", True
    if kind == "mutation":
        return draw(_mutations(own))
    if kind == "conflict with a mutation":
        changed, ours = draw(_mutations(own))
        # git starts a marker on a line of its own: a side without its last line break gets it back there
        side = changed if changed.endswith(b"\n") else changed + b"\n"
        return b"<<<<<<< HEAD\n" + own.encode() + b"=======\n" + side + b">>>>>>> x\n", ours or side == own.encode()
    if kind == "bytes":
        return draw(st.binary(max_size=64)), False
    return (json.dumps(draw(JSON), indent=2, sort_keys=True) + "\n").encode(), False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data(), st.sampled_from(["bake", "zenml"]))
def test_export_replaces_exactly_its_own_files(tmp_path: Path, data: st.DataObject, fmt: str) -> None:
    recognise = bake.ours if fmt == "bake" else zenml_config.ours
    old, ours = data.draw(existing(fmt))
    new = data.draw(bake_files() if fmt == "bake" else zenml_files())
    path = tmp_path / f"out-{fmt}"
    path.write_bytes(old)
    if old == new.encode():
        assert bake.write([(path, new)], recognise, root=tmp_path, cwd=tmp_path, protected={}) == [False]
        return
    try:
        wrote = bake.write([(path, new)], recognise, root=tmp_path, cwd=tmp_path, protected={})
    except OutputError as exc:
        assert not ours, old
        assert str(exc) == f"{path} {NOT_OURS}"
        assert path.read_bytes() == old
    else:
        assert ours, old
        assert wrote == [True] and path.read_bytes() == new.encode()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


@pytest.mark.parametrize("output", ["newdir/", "", " ", ".", "..", "a/.."])
def test_an_output_that_names_no_file_is_a_usage_error(tmp_path: Path, output: str) -> None:
    """`-o newdir/` wrote a file named newdir; `-o ""` wrote the default one: a folder, or nothing, is said."""
    shutil.copytree(EXAMPLES / "quickstart", tmp_path / "q")
    before = tree(tmp_path)
    result = invoke("export", "bake", "-o", output, cwd=tmp_path / "q")
    assert (result.returncode, result.stdout) == (2, "")
    example = os.path.join(output.strip() or ".", "docker-bake.json")
    assert result.stderr == f"error: -o {output!r} names no file: give the file to write, like {example}\n"
    assert tree(tmp_path) == before
