"""Build a project's images on one builder: DAG order, N at a time, reuse by build key, checks, push."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..errors import BuildError
from .base import Cancelled, ImageFailed, Job, Outcome, Progress, Scrubber, read_secret
from .context import Snapshot, from_lines, instruction_at, snapshot
from .protocol import Builder

CHECK_LOG_TAIL = 15


def _secret_texts(jobs: Sequence[Job], root: Path) -> list[str]:
    """The build secrets' texts, to take out of every line (builders.require checked they are there)."""
    out = []
    for kind, where in sorted({(kind, where) for job in jobs for _, kind, where in job.secrets}):
        try:
            out.append(read_secret(root, kind, where))
        except (OSError, KeyError):
            continue
    return out


class Interrupted(KeyboardInterrupt):
    """Ctrl-C: the builds in flight were abandoned; what had finished is in outcomes."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__()
        self.outcomes = outcomes


@dataclass(frozen=True)
class Options:
    jobs: int
    push: bool = False
    fresh: bool = False  # --no-reuse: build every image again, without the engine's layer cache
    # parent reference -> the digests dockwright.lock pins (index, then platforms): see base_key
    locked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def descendants(jobs: Sequence[Job], name: str) -> list[str]:
    children: dict[str, list[str]] = {}
    for job in jobs:
        if job.parent:
            children.setdefault(job.parent, []).append(job.name)
    found: list[str] = []
    todo = list(children.get(name, []))
    while todo:
        child = todo.pop(0)
        if child not in found:
            found.append(child)
            todo.extend(children.get(child, []))
    return found


class _Run:
    def __init__(self, builder: Builder, jobs: Sequence[Job], root: Path, options: Options,
                 report: Callable[[Progress], None]) -> None:
        self.builder = builder
        self.jobs = {job.name: job for job in jobs}
        self.order = [job.name for job in jobs]
        self.root = root
        self.options = options
        self.report = report
        self.keys: dict[str, str] = {}
        self.cancel = threading.Event()
        self.events: queue.Queue[Progress | Outcome] = queue.Queue()
        self.outcomes: dict[str, Outcome] = {}  # by image, as they finish (or are skipped)
        self.started: set[str] = set()  # images handed to a worker
        # Every line and message of a build passes through here on its way out (live view, -v, the failure's
        # log tail, --json): the one place secrets are taken out of it.
        self.scrub = Scrubber(builder.endpoint.proxy, secrets=_secret_texts(jobs, root))

    # -- one image, on a worker thread ------------------------------------------------------------

    def pulled_digest(self, pushed: str | None) -> str | None:
        """The registry digest of an image pulled from its push tag, as the pull recorded it (None: not pulled)."""
        found = self.builder.digests(pushed) if pushed else set()
        return next(iter(found)) if len(found) == 1 else None

    def one(self, job: Job) -> Outcome:
        started = time.monotonic()
        key: str | None = None
        snap = None
        try:
            self.events.put(Progress(job.name, "resolving"))
            snap = snapshot(self.root, job)
            key = self.key(job, snap)
            if job.needs_root_parent:
                self.check_parent_user(job)
            status, image_id = self.image(job, key, snap)
            pushed = job.push_tag if status == "pulled" else None
            digest = self.pulled_digest(pushed)
            if self.options.push and job.push_tag and status != "pulled":  # pulled: it is there already
                digest = self.builder.push(image_id, job.push_tag, self.events.put, job.name)
                pushed = job.push_tag
            return Outcome(job.name, job.tag, status, key, time.monotonic() - started, image_id, pushed, digest)
        except ImageFailed as exc:
            found = instruction_at(snap.dockerfile_bytes, exc.step) if snap and exc.step else None
            return Outcome(job.name, job.tag, "failed", key, time.monotonic() - started, message=str(exc),
                           where=f"{job.dockerfile}:{found[0]}" if found else None,
                           instruction=found[1] if found else None, log=exc.log)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine error we did not foresee fails this image, not the run
            return Outcome(job.name, job.tag, "failed", key, time.monotonic() - started,
                           message=f"{type(exc).__name__}: {exc}")

    def key(self, job: Job, snap: Snapshot) -> str:
        """The job's build key (its parents' keys are known: parents finish first)."""
        parent_tag = self.jobs[job.parent].tag if job.parent else None
        bases = {ref: self.base_key(ref, job.name) for ref in from_lines(snap.dockerfile_bytes) if ref != parent_tag}
        key = snap.key(parent_key=self.keys.get(job.parent) if job.parent else None, base_ids=bases,
                       checks=job.checks)
        self.keys[job.name] = key
        return key

    def image(self, job: Job, key: str, snap: Snapshot) -> tuple[str, str]:
        """(reused | pulled | built, the image's ID): one with this key on the engine, else from the registry
        (with --push), else built now and checked (discarded when a check fails), then tagged."""
        if not self.options.fresh:
            image_id = self.builder.find(job, key)
            if image_id is not None:
                return "reused", image_id
            if self.options.push:
                image_id = self.builder.fetch(job, key, self.events.put)
                if image_id is not None:
                    return "pulled", image_id
        image_id = self.builder.build(job, key, snap, fresh=self.options.fresh, report=self.events.put,
                                      cancel=self.cancel)
        try:
            self.run_checks(job, image_id)
        except (ImageFailed, Cancelled):
            self.builder.discard(image_id)
            raise
        self.builder.tag(image_id, job.tag)
        return "built", image_id

    def base_key(self, ref: str, name: str) -> str:
        """What the build key records for a parent from outside the project: a value every engine agrees on.
        A reference by digest is its digest; a parent dockwright.lock pins is the pinned index digest when the
        engine's image carries one of the pinned digests (pulled from the registry); else the engine's image
        ID, which dockerd (classic store), podman and buildah all make the digest of the image's config."""
        image_id = self.builder.base_id(ref, self.events.put, name)  # pulled when missing, as before
        if "@sha256:" in ref:
            return ref.split("@", 1)[1]
        pinned = self.options.locked.get(ref)
        if pinned and set(pinned) & self.builder.digests(ref):
            return pinned[0]
        return image_id

    def check_parent_user(self, job: Job) -> None:
        """The Dockerfile switches to root for its installs and, with no user set, ends as root: right only
        when its parent runs as root, which compile could not know. Fail before building when it does not."""
        user = self.builder.user_of(job.from_ref)
        if user.split(":", 1)[0] in ("", "root", "0"):
            return
        names = ", ".join(f"'{name}'" for name in job.environments)
        who = f"environments {names} set" if len(job.environments) > 1 else f"environment {names} sets"
        raise ImageFailed(
            f"parent image {job.from_ref} runs as user '{user}', but {who} no user: its Dockerfile switches to root "
            f"for its installs and would end as root\n"
            f"hint: set user: {user.split(':', 1)[0]} to run as the parent's user, or user: root")

    def run_checks(self, job: Job, image_id: str) -> None:
        for i, command in enumerate(job.checks, 1):
            self.events.put(Progress(job.name, "checking", i, len(job.checks), command))
            status, output = self.builder.check(image_id, command, self.cancel)
            if status != 0:
                lines = [line for line in output if line.strip()]
                raise ImageFailed(f"check failed (exit {status}): {command}", log=lines[-CHECK_LOG_TAIL:])

    def worker(self, work: queue.Queue[Job | None]) -> None:
        while True:
            job = work.get()
            if job is None:
                return
            try:
                outcome = self.one(job)
            except Cancelled:
                return
            self.events.put(outcome)

    # -- the schedule, on the main thread ---------------------------------------------------------

    def workers(self, work: queue.Queue[Job | None]) -> list[threading.Thread]:
        """The worker threads, started: never more than images, fewer when the system allows no more."""
        threads: list[threading.Thread] = []
        for i in range(max(1, min(self.options.jobs, len(self.order)))):
            thread = threading.Thread(target=self.worker, args=(work,), daemon=True, name=f"dockwright-build-{i}")
            try:
                thread.start()
            except RuntimeError as exc:  # the system's limit on threads: build with those that started
                if not threads:
                    raise BuildError(f"cannot start a build thread: {exc}") from None
                break
            threads.append(thread)
        return threads

    def submit_ready(self, work: queue.Queue[Job | None]) -> None:
        """Each job not started whose parent (when it is one of the jobs) has been built, reused or pulled."""
        for name in self.order:
            job = self.jobs[name]
            if name in self.started or name in self.outcomes:
                continue
            parent = self.outcomes.get(job.parent) if job.parent else None
            if job.parent and job.parent in self.jobs and (parent is None or parent.status in ("failed", "skipped")):
                continue
            self.started.add(name)
            work.put(job)

    def finished(self, event: Outcome) -> None:
        """An image's outcome; a failed one skips its descendants."""
        event = self.scrub.outcome(event)
        self.outcomes[event.name] = event
        self.report(Progress(event.name, event.status, detail=event.message))
        if event.status != "failed":
            return
        for child in descendants(list(self.jobs.values()), event.name):
            if child not in self.outcomes:
                self.outcomes[child] = Outcome(child, self.jobs[child].tag, "skipped",
                                               message=f"its parent image {event.name} failed")
                self.report(Progress(child, "skipped", detail=self.outcomes[child].message))

    def run(self) -> list[Outcome]:
        work: queue.Queue[Job | None] = queue.Queue()
        threads = self.workers(work)
        for name in self.order:
            self.report(Progress(name, "queued"))
        try:
            self.submit_ready(work)
            while len(self.outcomes) < len(self.order):
                try:
                    event = self.events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if isinstance(event, Progress):
                    self.report(self.scrub.progress(event))
                    continue
                self.finished(event)
                self.submit_ready(work)
        except KeyboardInterrupt:
            self.cancel.set()
            deadline = time.monotonic() + 3
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            raise Interrupted([self.outcomes[name] for name in self.order if name in self.outcomes]) from None
        finally:
            for _ in threads:
                work.put(None)
        return [self.outcomes[name] for name in self.order]


def build_all(builder: Builder, jobs: Sequence[Job], root: Path, options: Options,
              report: Callable[[Progress], None]) -> list[Outcome]:
    """Every job, parents first; a failed image skips its descendants and nothing else."""
    return _Run(builder, jobs, root, options, report).run()
