"""The Builder protocol: what the schedule asks of every backend (docker, podman, buildah)."""

from __future__ import annotations

import threading
from typing import Protocol

from .base import Endpoint, Job, Report
from .context import Snapshot


class Builder(Protocol):
    """A backend. Every method may be called from several worker threads at once.

    Backends: docker (dockerd, classic builder API), podman (its Docker-compatible API, same SDK), buildah (CLI).
    Build keys are engine-independent (base IDs are config digests with `sha256:`, or lock-pinned registry
    digests), so find/fetch on any backend agree about an image built on another.
    A pool (pool.py) is not a Builder: the schedule places each job on one of its members (the member holding its
    parent, else the least busy), runs `--jobs` workers per member, carries parents between members with `fetch`
    (pull by push_tag, key label checked), and places again a job whose member raised ImageFailed(engine_down=True).
    Backends declare `features` ({"mounts", "secrets"}: buildah, podman; none on the classic docker builder),
    read before `connect`; secrets reach `build` by where the backend reads them (a variable's name, a file's path:
    buildah `--secret id=ID,src=FILE|env=VAR`, podman's build `secrets` parameter naming files the request's tar
    adds, which podman moves out of the context before it builds), never as part of the Snapshot.
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
