"""`dockwright export zenml`: ZenML run configurations naming dockwright's images, checked with ZenML's own
models (zenml is in the test extra)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from hypothesis import given, settings, strategies as st

from compiler import zenml_config
from compiler.manifest import Manifest
from compiler.driver import compile_project
from compiler.schema import NAME_RE
from helpers import CASES, copy_project, invoke

DIGEST = "sha256:" + "ab" * 32


def _validated(text: str) -> dict[str, Any]:
    """The file as ZenML reads it: a valid run configuration whose docker settings are valid DockerSettings."""
    # imported here, not at collection: importing zenml takes seconds, which every test run would pay
    from zenml.config.docker_settings import DockerSettings
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    data: dict[str, Any] = yaml.safe_load(text)
    config = PipelineRunConfiguration.model_validate(data)
    dockers = [data["settings"]["docker"]] if "settings" in data else []
    dockers += [step["settings"]["docker"] for step in (data.get("steps") or {}).values()]
    for docker in dockers:
        settings = DockerSettings.model_validate(docker)
        assert settings.skip_build and settings.parent_image == docker["parent_image"]
    assert config.model_dump(exclude_none=True)  # not empty
    return data


def _project(tmp_path: Path, registry: bool = True) -> Path:
    work = copy_project(CASES / "out-zenml", tmp_path / "p")
    for name in ("warnings.txt",):
        (work / name).unlink(missing_ok=True)
    if registry:
        text = (work / "dockwright.yaml").read_text(encoding="utf-8")
        (work / "dockwright.yaml").write_text(text.replace("project: zenml-ok\n",
                                                           "project: zenml-ok\nregistry: reg.example:5000/ml\n"),
                                              encoding="utf-8")
    return work


def _summary(manifest: Manifest, skip: tuple[str, ...] = (), no_digest: tuple[str, ...] = ()) -> str:
    """What `dockwright build --push --json` prints for the manifest's images."""
    images = [{"image": name, "tag": entry.tag, "status": "built", "pushed": entry.push_tag,
               **({} if name in no_digest else {"digest": DIGEST})}
              for name, entry in sorted(manifest.images.items()) if name not in skip]
    return json.dumps({"builder": "local", "images": images}, indent=2)


def test_local_tags(tmp_path: Path) -> None:
    work = _project(tmp_path, registry=False)
    result = invoke("export", "zenml", "--local", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "generated/zenml/training.yaml: written\n"
    tags = {name: entry.tag for name, entry in compile_project(work / "dockwright.yaml").manifest.images.items()}
    text = (work / "generated/zenml/training.yaml").read_text(encoding="utf-8")
    assert text == f"""\
# ZenML run configuration of pipeline 'training', written by `dockwright export zenml` from dockwright.yaml.
# Every step runs in the image dockwright built for it, as it is (skip_build). Use it with
#   zenml pipeline run <pipeline source> --config <this file>
# or my_pipeline.with_options(config_path="<this file>"). Do not edit: export again.
settings:
  docker:
    parent_image: "{tags['base']}"
    skip_build: true
steps:
  "evaluate":
    settings:
      docker:
        parent_image: "{tags['training.evaluate']}"
        skip_build: true
  "report":
    settings:
      docker:
        parent_image: "{tags['hub']}"
        skip_build: true
  "train":
    settings:
      docker:
        parent_image: "{tags['trainer']}"
        skip_build: true
  "tune":
    settings:
      docker:
        parent_image: "{tags['gpu']}"
        skip_build: true
"""
    assert set(_validated(text)["steps"]) == {"evaluate", "report", "train", "tune"}  # `load` runs in base
    again = invoke("export", "zenml", "--local", "-o", "configs", cwd=work)
    assert again.returncode == 0, again.stderr
    assert (work / "configs/training.yaml").read_text(encoding="utf-8") == text
    assert invoke("export", "zenml", "--local", cwd=work).stdout == "generated/zenml/training.yaml: unchanged\n"


def test_pushed_images_by_digest_when_they_copy_project_files(tmp_path: Path) -> None:
    work = _project(tmp_path)
    manifest = compile_project(work / "dockwright.yaml").manifest
    push = {name: entry.push_tag for name, entry in manifest.images.items()}
    # base copies src/; trainer and training.evaluate are built on it; hub and gpu copy nothing
    assert {n: zenml_config.copies_project_files(manifest, n) for n in push} == {
        "base": True, "trainer": True, "training.evaluate": True, "hub": False, "gpu": False}
    (work / "build.json").write_text(_summary(manifest, no_digest=("hub",)), encoding="utf-8")
    result = invoke("export", "zenml", "--from", "build.json", cwd=work)
    assert result.returncode == 0, result.stderr
    data = _validated((work / "generated/zenml/training.yaml").read_text(encoding="utf-8"))
    assert data["settings"]["docker"]["parent_image"] == f"{push['base']}@{DIGEST}"
    assert {step: s["settings"]["docker"]["parent_image"] for step, s in data["steps"].items()} == {
        "evaluate": f"{push['training.evaluate']}@{DIGEST}", "report": push["hub"],
        "train": f"{push['trainer']}@{DIGEST}", "tune": f"{push['gpu']}@{DIGEST}"}


def test_images_never_pushed_are_named(tmp_path: Path) -> None:
    work = _project(tmp_path)
    manifest = compile_project(work / "dockwright.yaml").manifest
    (work / "build.json").write_text(_summary(manifest, skip=("gpu", "hub"), no_digest=("trainer",)),
                                     encoding="utf-8")
    result = invoke("export", "zenml", "--from", "build.json", "-q", cwd=work)
    assert result.returncode == 1
    assert result.stderr == (
        "error: 3 images the run configurations need were not pushed: gpu (not in the build summary), hub (not in "
        "the build summary), trainer (pushed without a digest; it copies project files, so only its digest names "
        "it)\nhint: run `dockwright build --push --json > FILE` with the same dockwright.yaml, then "
        "`dockwright export zenml --from FILE`\n")
    assert not (work / "generated/zenml").exists()
    stale = json.loads(_summary(manifest))
    stale["images"][0]["tag"] = stale["images"][0]["tag"][:-12] + "0" * 12
    (work / "build.json").write_text(json.dumps(stale), encoding="utf-8")
    old = invoke("export", "zenml", "--from", "build.json", "-q", cwd=work)
    assert old.returncode == 1
    first = sorted(manifest.images)[0]
    assert f"{first} (the summary has {stale['images'][0]['tag']}, compiled now: " \
           f"{manifest.images[first].tag})" in old.stderr


def test_bad_requests(tmp_path: Path) -> None:
    work = _project(tmp_path)
    cases = {
        ("--local", "--from", "x.json"): (2, "error: give --from FILE (what `dockwright build --push --json` "
                                             "printed) or --local\n"),
        (): (2, "error: give --from FILE (what `dockwright build --push --json` printed) or --local\n"),
        ("nope", "--local"): (2, "error: unknown pipeline 'nope'; pipelines: training\n"),
        ("--from", "missing.json"): (1, "error: no such file: missing.json\nhint: write it with `dockwright build "
                                        "--push --json > missing.json`\n"),
        ("--from", "dockwright.yaml"): (1, "error: dockwright.yaml is not what `dockwright build --push --json` "
                                           "prints\nhint: write it with `dockwright build --push --json > "
                                           "dockwright.yaml`\n"),
    }
    for args, (code, stderr) in cases.items():
        result = invoke("export", "zenml", *args, "-q", cwd=work)
        assert (result.returncode, result.stderr) == (code, stderr), args
    plain = _project(tmp_path / "plain", registry=False)
    (plain / "b.json").write_text('{"images": []}', encoding="utf-8")
    result = invoke("export", "zenml", "--from", "b.json", "-q", cwd=plain)
    assert (result.returncode, result.stderr) == (2, "error: --from names pushed images, but dockwright.yaml has no "
                                                     "registry: add `registry: host:port/path`, or use --local\n")


_NAMES = st.one_of(st.from_regex(NAME_RE), st.sampled_from(["no", "on", "null", "true", "1e3", "0x1f", "y", "~"]))


@settings(max_examples=60, deadline=None)
@given(steps=st.dictionaries(_NAMES, st.sampled_from(["a", "b", "c"]), min_size=1, max_size=6),
       own=st.sampled_from([None, "a"]))
def test_every_step_name_reads_back_as_written(steps: dict[str, str], own: str | None) -> None:
    """YAML words (no, on, null), numbers and the like are step names, never booleans or numbers; the file is
    sorted whatever the order of the manifest."""
    def record(steps: Any) -> Any:
        return SimpleNamespace(source="dockwright.yaml", pipelines={"p": SimpleNamespace(image=own, steps={
            name: SimpleNamespace(image=image) for name, image in steps})})

    manifest = record(reversed(list(steps.items())))
    refs = {"a": "reg:5000/x-a:123456789012", "b": f"reg:5000/x-b:1@{DIGEST}", "c": "x-c:0"}
    text = zenml_config.render(manifest, "p", refs)
    data = yaml.safe_load(text)
    assert data.get("settings") == ({"docker": {"parent_image": refs["a"], "skip_build": True}} if own else None)
    want = {name: {"settings": {"docker": {"parent_image": refs[image], "skip_build": True}}}
            for name, image in steps.items() if image != own}
    assert (data.get("steps") or {}) == want
    assert list(data.get("steps") or {}) == sorted(want)
    assert text == zenml_config.render(record(sorted(steps.items())), "p", refs)
