"""What every builder backend shares: the jobs read from manifest.json, the Builder protocol, outcomes."""

from __future__ import annotations

import os
import re
import string
import threading
from dataclasses import replace
from urllib.parse import unquote, urlsplit
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from .context import Snapshot

# The label that records why an image is what it is: `docker inspect` shows it.
KEY_LABEL = "io.dockwright.build-key"
IMAGE_LABEL = "io.dockwright.image"
PROJECT_LABEL = "io.dockwright.project"


@dataclass(frozen=True)
class Job:
    """One image of manifest.json, with the paths the builder needs."""

    name: str
    tag: str  # the local tag every FROM line uses: project-image:spec12
    push_tag: str | None
    dockerfile: str  # relative to the project root
    context: str  # relative to the project root
    inputs: tuple[str, ...]  # relative to the project root
    parent: str | None  # another job's name
    checks: tuple[str, ...]
    project: str
    from_ref: str = ""  # the image its Dockerfile starts FROM
    environments: tuple[str, ...] = ()
    needs_root_parent: bool = False  # right only on a parent that runs as root (compile did not know its user)

    @classmethod
    def from_manifest(cls, project: str, entry: Mapping[str, Any]) -> Job:
        return cls(
            name=entry["name"], tag=entry["tag"], push_tag=entry.get("push_tag"), dockerfile=entry["dockerfile"],
            context=entry["context"], inputs=tuple(entry["inputs"]), parent=entry.get("parent"),
            checks=tuple(entry.get("checks") or ()), project=project, from_ref=entry.get("from") or "",
            environments=tuple(entry.get("environments") or ()),
            needs_root_parent=bool(entry.get("needs_root_parent")),
        )


@dataclass(frozen=True)
class Endpoint:
    """Where a builder sends its work, as manifest.json's `builders.<name>` says."""

    name: str
    type: str
    url: str | None
    tls: Mapping[str, Any]
    proxy: Mapping[str, str]
    root: Path  # the project root: tls file paths are relative to it
    network: str | None = None  # `host`: build containers on the host's network


class Cancelled(Exception):
    """The run was interrupted; the build in flight was abandoned."""


class ImageFailed(Exception):
    """One image failed: the message says what, the log tail shows why; its dependents are skipped."""

    def __init__(self, message: str, *, step: int | None = None, log: list[str] | None = None) -> None:
        super().__init__(message)
        self.step = step  # the Dockerfile instruction (1-based) the engine was at
        self.log = log or []


@dataclass
class Progress:
    """What a worker reports about one image while it works."""

    name: str
    state: str  # queued | resolving | building | checking | pushing | pulling | output (a line the build
    # printed, in detail) | an Outcome status
    step: int = 0
    steps: int = 0
    detail: str = ""


Report = Callable[[Progress], None]


@dataclass
class Outcome:
    """The result for one image, as the summary and --json show it."""

    name: str
    tag: str
    status: str  # built | reused | pulled | failed | skipped
    key: str | None = None
    seconds: float = 0.0
    image_id: str | None = None
    pushed: str | None = None
    digest: str | None = None  # the pushed image's registry digest (sha256:...), as the push reported it
    message: str = ""
    where: str | None = None  # "Dockerfile:line" of the failing instruction
    instruction: str | None = None
    log: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"image": self.name, "tag": self.tag, "build_key": self.key, "status": self.status,
                "seconds": round(self.seconds, 2), "id": self.image_id, "pushed": self.pushed,
                **({"digest": self.digest} if self.digest else {}), "error": self.message or None, "where": self.where, "instruction": self.instruction,
                "log": list(self.log)}


class Builder(Protocol):
    """A backend. Every method may be called from several worker threads at once.

    Backends: docker (dockerd, classic builder API), podman (its Docker-compatible API, same SDK), buildah (CLI).
    Build keys are engine-independent (base IDs are config digests with `sha256:`, or lock-pinned registry
    digests), so find/fetch on any backend agree about an image built on another. What comes next fits here:
    - `type: pool`: a PoolBuilder holding member Builders behind this same protocol is not enough, since the
      schedule must place each job: give the schedule a placement step (member holding the parent by `find`,
      else least busy), one worker group of `--jobs` per member, and have `fetch` (pull by push_tag, key label
      checked) carry parents between members; an ImageFailed raised by a `_lost` engine needs a flag
      (`engine_down`) so the job is re-queued on another member instead of failing.
    - cache mounts and secrets: a class attribute `features: frozenset[str]` ({"mounts", "secrets"} on buildah,
      podman and BuildKit; none on the classic docker builder), read before `connect` so a project needing them
      fails naming the engines that can; secrets reach `build` as a separate argument (id -> env var or file of
      this machine: buildah `--secret id=ID,src=FILE|env=VAR`, podman's build `secrets` parameter), never as
      part of the Snapshot, so they stay out of the build key, the context tar and the log.
    """

    endpoint: Endpoint

    def describe(self) -> str:
        """The endpoint as users know it: `unix:///var/run/docker.sock`, `tcp://host:2376`."""

    def connect(self) -> None:
        """Reach the engine or raise BuildError with a one-line reason and what to try."""

    def base_id(self, ref: str, report: Report, name: str) -> str:
        """The ID of an image from outside the project, pulled when missing; ImageFailed otherwise."""

    def digests(self, ref: str) -> set[str]:
        """The registry manifest digests the engine knows the image by (its RepoDigests); may be empty."""

    def user_of(self, ref: str) -> str:
        """The user an image on the engine runs as (its Config.User; "" for root)."""

    def find(self, job: Job, key: str) -> str | None:
        """The ID of an image built with this key (tagged as job.tag if it was not); None when there is none."""

    def fetch(self, job: Job, key: str, report: Report) -> str | None:
        """The image with this key from the registry (job.push_tag), tagged as job.tag; None otherwise."""

    def build(self, job: Job, key: str, snap: Snapshot, *, fresh: bool, report: Report,
              cancel: threading.Event) -> str:
        """Build the image untagged; return its ID, or raise ImageFailed / Cancelled."""

    def check(self, image_id: str, command: str, cancel: threading.Event) -> tuple[int, list[str]]:
        """Run one check in a throwaway container: exit status and output lines."""

    def tag(self, image_id: str, tag: str) -> None:
        """Point tag at the image."""

    def discard(self, image_id: str) -> None:
        """Remove an image that failed its checks, so that its key never counts as built."""

    def push(self, image_id: str, tag: str, report: Report, name: str) -> str | None:
        """Tag and push to the registry; the registry digest of what it stored (None: not told).
        ImageFailed when the registry refuses."""

    def close(self) -> None:
        """Release connections."""


_ANY_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#\s@]+)@")


class Scrubber:
    """Takes every secret out of a line the build printed, before it leaves the schedule: the user part of
    any URL becomes '***', and so does each expanded builder proxy value's user name, password and user part
    (the build sees them as http_proxy=..., and a command may print them in any form)."""

    def __init__(self, proxy: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        found: set[str] = set()
        for value in proxy.values():
            expanded = string.Template(value).safe_substitute(env)
            try:
                parts = urlsplit(expanded if "://" in expanded else f"http://{expanded}")
                userinfo = parts.netloc.rpartition("@")[0]
                pieces = [userinfo, *userinfo.split(":", 1)] if userinfo else []
            except ValueError:
                pieces = []
            for piece in pieces:
                for form in (piece, unquote(piece)):
                    if len(form) >= 3:
                        found.add(form)
        self.secrets = sorted(found, key=len, reverse=True)  # the whole user part before its pieces

    def line(self, text: str) -> str:
        text = _ANY_USERINFO.sub(lambda m: f"{m.group('scheme')}://***@", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def progress(self, event: Progress) -> Progress:
        return replace(event, detail=self.line(event.detail)) if event.detail else event

    def outcome(self, outcome: Outcome) -> Outcome:
        return replace(outcome, message=self.line(outcome.message), log=[self.line(x) for x in outcome.log],
                       instruction=self.line(outcome.instruction) if outcome.instruction else outcome.instruction)
