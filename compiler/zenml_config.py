"""`dockwright export zenml`: one ZenML run configuration per pipeline, naming the images dockwright built.

Each file sets `settings.docker.parent_image` to the pipeline's image and, for each step that runs in another
image, `steps.<step>.settings.docker.parent_image`, all with `skip_build: true`: ZenML runs the images as they
are and builds nothing. What `zenml pipeline run --config FILE` and `pipeline.with_options(config_path=FILE)`
read. Pure (references, render) plus writes through bake.write (atomic, only when the bytes change, replacing
only a file whose first line is the header render writes: ours).

Where the image references come from:
- `--from FILE`: what `dockwright build --push --json` printed. An image that copies project files (its own
  `copy`, `local_packages`, `certificates`, or its parent's; a custom parent's build context) is named by the
  digest the registry stored it under (`push_tag@sha256:…`): its tag names the configuration, not the sources.
  Any other image is named by its push tag, which its configuration alone decides. An image the file does not
  show pushed (or with another tag: the file is from another configuration) is an error naming it.
- `--local`: the local tags (`project-image:hash`), for an orchestrator on the engine that built them.

The text is a function of the manifest and those references: sorted, no timestamps, no paths of this machine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import DockwrightError, UsageError, read_regular, shown_path
from .manifest import ImageRecord, Manifest

FOLDER = "zenml"  # in the output directory, one <pipeline>.yaml each
# The first line of every file render writes: how export knows a file it may replace.
HEADER = re.compile(rb"# ZenML run configuration of pipeline '[^\n]*', written by `dockwright export zenml` "
                    rb"from [^\n]*\.\r?")  # \r: CRLF line ends (git's autocrlf)


class NotPushed(DockwrightError):
    """Images a run configuration needs that the build summary does not show pushed (exit 1)."""


@dataclass(frozen=True)
class Pushed:
    tag: str
    push_tag: str | None
    digest: str | None


def read_build(path: Path) -> dict[str, Pushed]:
    """Image name -> what `build --push --json` says about it; a file that is not that summary is an error."""
    shown = shown_path(path)
    try:
        data = json.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        raise DockwrightError(f"no such file: {shown}\nhint: write it with `dockwright build --push --json > "
                              f"{shown}`") from None
    except OSError as exc:
        raise DockwrightError(f"cannot read {shown}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError):
        data = None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not all(_entry(item) for item in images):
        raise DockwrightError(f"{shown} is not what `dockwright build --push --json` prints\nhint: write it with "
                              f"`dockwright build --push --json > {shown}`")
    return {item["image"]: Pushed(item["tag"], item.get("pushed"), item.get("digest")) for item in images}


def _entry(item: Any) -> bool:
    return (isinstance(item, dict) and isinstance(item.get("image"), str) and isinstance(item.get("tag"), str)
            and isinstance(item.get("pushed"), (str, type(None))) and isinstance(item.get("digest"), (str, type(None))))


def copies_project_files(manifest: Manifest, image: str) -> bool:
    """Whether the image (or one it is built on) holds files of the project beyond its generated ones."""
    generated = f"{manifest.output.rstrip('/')}/images/"
    seen: set[str] = set()
    name: str | None = image
    while name is not None and name not in seen:
        seen.add(name)
        entry = manifest.images[name]
        if not entry.generated or any(not i.startswith(generated) for i in entry.inputs):
            return True
        name = entry.parent
    return False


def pipeline_images(manifest: Manifest, pipeline: str) -> tuple[str | None, dict[str, str]]:
    """The pipeline's image and, step -> image, each step that runs in another one."""
    entry = manifest.pipelines[pipeline]
    own = entry.image
    steps = {step: data.image for step, data in sorted(entry.steps.items())
             if data.image and data.image != own}
    return own, steps


def references(manifest: Manifest, images: list[str], build: Mapping[str, Pushed] | None) -> dict[str, str]:
    """Image name -> the reference a run configuration names it by; NotPushed naming every image that has none."""
    entries = manifest.images
    if build is None:
        return {name: entries[name].tag for name in images}
    out: dict[str, str] = {}
    missing: list[str] = []
    for name in sorted(set(images)):
        entry, pushed = entries[name], build.get(name)
        by_digest = copies_project_files(manifest, name)
        if pushed is None or pushed.push_tag is None or pushed.tag != entry.tag or \
                pushed.push_tag != entry.push_tag or (by_digest and not pushed.digest):
            missing.append(f"{name} ({_why(pushed, entry)})")
            continue
        out[name] = f"{pushed.push_tag}@{pushed.digest}" if pushed.digest else pushed.push_tag
    if missing:
        raise NotPushed(f"{len(missing)} image{'s' if len(missing) != 1 else ''} the run configurations need "
                        f"{'were' if len(missing) != 1 else 'was'} not pushed: {', '.join(missing)}\n"
                        "hint: run `dockwright build --push --json > FILE` with the same dockwright.yaml, then "
                        "`dockwright export zenml --from FILE`")
    return out


def _why(pushed: Pushed | None, entry: ImageRecord) -> str:
    if pushed is None:
        return "not in the build summary"
    if pushed.tag != entry.tag:
        return f"the summary has {pushed.tag}, compiled now: {entry.tag}"
    if pushed.push_tag is None or pushed.push_tag != entry.push_tag:
        return "not pushed"
    return "pushed without a digest; it copies project files, so only its digest names it"


def render(manifest: Manifest, pipeline: str, refs: Mapping[str, str]) -> str:
    """The run configuration's YAML text (JSON-quoted scalars, which YAML reads as they are)."""
    own, steps = pipeline_images(manifest, pipeline)
    lines = [
        f"# ZenML run configuration of pipeline '{pipeline}', written by `dockwright export zenml` from "
        f"{manifest.source}.",
        "# Every step runs in the image dockwright built for it, as it is (skip_build). Use it with",
        "#   zenml pipeline run <pipeline source> --config <this file>",
        "# or my_pipeline.with_options(config_path=\"<this file>\"). Do not edit: export again.",
    ]
    if own is not None:
        lines += ["settings:", "  docker:", f"    parent_image: {json.dumps(refs[own])}", "    skip_build: true"]
    if steps:
        lines.append("steps:")
        for step, image in steps.items():
            lines += [f"  {json.dumps(step)}:", "    settings:", "      docker:",
                      f"        parent_image: {json.dumps(refs[image])}", "        skip_build: true"]
    return "\n".join(lines) + "\n"


def ours(data: bytes) -> bool:
    """Whether data is a run configuration `export zenml` wrote: its first line is render's header."""
    return HEADER.fullmatch(data.split(b"\n", 1)[0]) is not None


def select(manifest: Manifest, pipelines: tuple[str, ...]) -> list[str]:
    """The pipelines asked for (all when none), sorted; an unknown one is a usage error."""
    known = sorted(manifest.pipelines)
    unknown = [p for p in pipelines if p not in known]
    if unknown:
        raise UsageError(f"unknown pipeline {', '.join(repr(p) for p in unknown)}; pipelines: "
                         f"{', '.join(known) or 'none'}")
    if not known:
        raise UsageError(f"{manifest.source} defines no pipelines")
    return sorted(set(pipelines)) or known


def needed(manifest: Manifest, pipelines: list[str]) -> list[str]:
    """Every image the pipelines' run configurations name, sorted."""
    out: set[str] = set()
    for pipeline in pipelines:
        own, steps = pipeline_images(manifest, pipeline)
        out.update([*([own] if own else []), *steps.values()])
    return sorted(out)


__all__ = ["FOLDER", "NotPushed", "Pushed", "copies_project_files", "needed", "pipeline_images", "read_build",
           "ours", "references", "render", "select"]
