"""manifest.json read back as records: exactly what compile wrote, or one ManifestError; one resolver of names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import EXAMPLES, ROOT, run_cli

from compiler.errors import UsageError
from compiler.manifest import Manifest, ManifestError, environment, images, names, pretty_json
from compiler.driver import compile_project

WRITTEN = sorted(p for folder in ("tests/cases", "tests/bake", "tests/zenml_cases", "examples")
                 for p in (ROOT / folder).rglob("manifest.json")
                 if json.loads(p.read_text(encoding="utf-8")).get("generator") == "dockwright")


def test_every_manifest_written_reads_back_to_its_own_bytes() -> None:
    assert len(WRITTEN) >= 10
    for path in WRITTEN:
        text = path.read_text(encoding="utf-8")
        assert Manifest.read(path).to_json() == text, path


def test_compiled_manifest_is_the_record_compile_wrote() -> None:
    compiled = compile_project(EXAMPLES / "ml-training" / "dockwright.yaml")
    assert compiled.manifest.to_json() == compiled.files["manifest.json"]
    assert compiled.manifest.build_order == ("base", "gpu-train", "server", "training.evaluate")
    assert compiled.manifest.images["server"].parent == "base"


BASE = json.loads((EXAMPLES / "ml-training" / "generated" / "manifest.json").read_text(encoding="utf-8"))
WHERE = "generated/manifest.json"
HINT = "\nhint: run 'dockwright compile' to write it again"


def _edited(change: Any) -> str:
    data = json.loads(json.dumps(BASE))
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize("text, problem", [
    ("{", "it is not JSON"),
    ("[" * 100000 + "]" * 100000, "it is not JSON"),
    ("[]", "the file is not an object"),
    (_edited(lambda d: d.pop("generator")), "it does not say \"generator\": \"dockwright\""),
    (_edited(lambda d: d.update(format=2)), "its format is 2, not 1"),
    (_edited(lambda d: d["images"]["base"].pop("tag")), "images.base.tag is missing"),
    (_edited(lambda d: d["images"]["base"].update(inputs="src/")), "images.base.inputs is not a list of strings"),
    (_edited(lambda d: d["images"]["base"].update(name="other")), "images.base.name is not 'base'"),
    (_edited(lambda d: d["images"]["server"].update(parent="gone")),
     "images.server.parent names image 'gone', which is not in images"),
    (_edited(lambda d: d["build_order"].reverse()), "build_order has image 'server' before its parent 'base'"),
    (_edited(lambda d: d["build_order"].pop()), "build_order does not list each image once"),
    (_edited(lambda d: d["environments"]["base"].update(image=3)), "environments.base.image is not a string or null"),
    (_edited(lambda d: d["pipelines"]["training"].update(edges=[["a"]])),
     "pipelines.training.edges is not a list of [step, step] pairs"),
    (_edited(lambda d: d.update(default_builder="remote")),
     "default_builder names builder 'remote', which is not in builders"),
    (_edited(lambda d: d["builders"]["local"].update(tls={"verify": 1})),
     "builders.local.tls has a value that is not a string or true/false"),
])
def test_a_manifest_not_written_by_dockwright_is_one_error(text: str, problem: str) -> None:
    with pytest.raises(ManifestError) as err:
        Manifest.parse(text, WHERE)
    assert str(err.value) == f"{WHERE} is not a manifest dockwright wrote: {problem}{HINT}"


def test_a_manifest_that_cannot_be_read_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as err:
        Manifest.read(tmp_path / "manifest.json")
    assert str(err.value) == f"cannot read {tmp_path / 'manifest.json'}: No such file or directory " \
                             "(run 'dockwright compile')"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*at, i))
    return found


PATHS = _paths(BASE)[1:]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), st.one_of(st.just("drop"), JSON), st.integers(0, 4000))
def test_any_edit_reads_back_or_is_one_manifest_error(path: tuple[Any, ...], new: Any, cut: int) -> None:
    """Each value replaced by any JSON value or dropped, and the text cut short anywhere: a Manifest whose own
    text reads back the same, or a ManifestError; never another exception."""
    data = json.loads(json.dumps(BASE))
    holder = data
    for part in path[:-1]:
        holder = holder[part]
    if new == "drop":
        del holder[path[-1]]
    else:
        holder[path[-1]] = new
    for text in (json.dumps(data), json.dumps(data)[:cut]):
        try:
            found = Manifest.parse(text, WHERE)
        except ManifestError as exc:
            assert str(exc).startswith(f"{WHERE} is not a manifest dockwright wrote: ") and str(exc).endswith(HINT)
            continue
        assert Manifest.parse(found.to_json()) == found
        images(found, list(names(found)))  # every name it knows resolves


# -- names: one resolver for build and explain ---------------------------------------------------------

PROJECT = """version: 1
project: demo
environments:
  base: {python: "3.11"}
  other: {extends: base, requirements: [numpy]}
pipelines:
  train:
    environment: base
    steps:
      fit: {environment: other}
      plot: {settings: {requirements: [matplotlib]}, after: [fit]}
runner: {environment: base}
"""


@pytest.fixture
def demo(tmp_path: Path) -> Manifest:
    (tmp_path / "dockwright.yaml").write_text(PROJECT, encoding="utf-8")
    return compile_project(tmp_path / "dockwright.yaml").manifest


def test_each_name_means_its_images_and_environment(demo: Manifest) -> None:
    assert images(demo, []) == ["base", "other", "train.plot"]
    assert images(demo, ["other"]) == ["base", "other"]  # with what it is built on
    assert images(demo, ["train"]) == ["base", "other", "train.plot"]  # every image the pipeline runs
    assert images(demo, ["train.fit"]) == ["base", "other"]
    assert images(demo, ["runner"]) == images(demo, ["runner.settings"]) == ["base"]
    assert environment(demo, "train.plot") == ("train.plot", None)
    assert environment(demo, "train.fit") == (
        "other", "step 'fit' of pipeline 'train' has no settings; it runs in environment 'other'")
    assert environment(demo, "runner.settings") == ("base", "the runner has no settings; it runs in environment 'base'")


@pytest.mark.parametrize("name, message", [
    ("sever", "unknown environment 'sever'\nhint: environments: base, other, train.plot"),
    ("train", "unknown environment 'train'\nhint: did you mean 'train.fit'?"),
    ("runner", "unknown environment 'runner'\nhint: environments: base, other, train.plot"),
    ("server.settings", "unknown environment 'server.settings'\nhint: environments: base, other, train.plot"),
])
def test_explain_refuses_a_name_that_is_not_one_environment(demo: Manifest, name: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        environment(demo, name)
    assert str(err.value) == message


@pytest.mark.parametrize("name, message", [
    ("server", "no image, environment, pipeline or step named 'server'\nhint: the images are: base, other, train.plot"),
    ("trian", "no image, environment, pipeline or step named 'trian'\nhint: did you mean 'train'?"),
])
def test_build_refuses_a_name_that_means_nothing(demo: Manifest, name: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        images(demo, ["base", name])
    assert str(err.value) == message


def test_build_names_an_unknown_image_before_it_looks_for_an_engine(tmp_path: Path) -> None:
    (tmp_path / "dockwright.yaml").write_text(PROJECT, encoding="utf-8")
    done = run_cli("build", "sever", cwd=tmp_path, env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert (done.returncode, done.stdout, done.stderr.splitlines()[-2:]) == (
        2, "", ["error: no image, environment, pipeline or step named 'sever'", "hint: the images are: base, other, train.plot"])


_JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False))
_JSON = st.recursive(_JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4),
    st.dictionaries(st.integers(-3, 3), inner, max_size=3), st.tuples(inner, inner)), max_leaves=30)


@settings(max_examples=500)
@given(_JSON)
def test_pretty_json_is_exactly_the_standard_librarys_indented_json(value: Any) -> None:
    """manifest.json is written by manifest.pretty_json, a faster twin of json.dumps(indent=2, sort_keys=True,
    ensure_ascii=False): the same text for every value (non-string keys, floats and tuples included)."""
    assert pretty_json(value) == json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
