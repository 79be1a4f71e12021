"""Build a project's images on one builder: DAG order, N at a time, reuse by build key, checks, push."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..errors import BuildError
from .base import Cancelled, ImageFailed, Job, Outcome, Progress, Scrubber, read_secret
from .context import Snapshot, from_lines, instruction_at, snapshot
from .pool import DONE, Placement, Pool, Seat
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


@dataclass(frozen=True)
class Lost:
    """An image given up because its member's engine went away (in a pool: it goes to another member)."""

    name: str
    member: str
    message: str


class _Run:
    def __init__(self, backend: Builder | Pool, jobs: Sequence[Job], root: Path, options: Options,
                 report: Callable[[Progress], None]) -> None:
        self.pool = backend if isinstance(backend, Pool) else None
        members = backend.members if isinstance(backend, Pool) else [(backend.endpoint.name, backend)]
        self.builders: dict[str, Builder] = dict(members)
        self.jobs = {job.name: job for job in jobs}
        self.order = [job.name for job in jobs]
        self.root = root
        # a pool pushes every image: the registry carries images between its members, and holds what it built
        self.options = replace(options, push=True) if self.pool else options
        self.report = report
        self.keys: dict[str, str] = {}
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.events: queue.Queue[Progress | Outcome | Lost] = queue.Queue()
        self.outcomes: dict[str, Outcome] = {}  # by image, as they finish (or are skipped)
        slots = max(1, min(self.options.jobs, len(self.order)))
        down = self.pool.down if self.pool else {}
        self.seats = {name: Seat(name, slots, up=name not in down) for name, _ in members}
        self.placement = Placement(self.order, {job.name: job.parent for job in jobs}, list(self.seats.values()))
        self.where: dict[str, Seat] = {}  # image -> the member working on it
        # Every line and message of a build passes through here on its way out (live view, -v, the failure's
        # log tail, --json): the one place secrets are taken out of it.
        proxies = {f"{name}.{key}": value for name, b in members for key, value in b.endpoint.proxy.items()}
        self.scrub = Scrubber(proxies, secrets=_secret_texts(jobs, root))

    # -- one image, on a worker thread ------------------------------------------------------------

    def pulled_digest(self, builder: Builder, pushed: str | None) -> str | None:
        """The registry digest of an image pulled from its push tag, as the pull recorded it (None: not pulled)."""
        found = builder.digests(pushed) if pushed else set()
        return next(iter(found)) if len(found) == 1 else None

    def one(self, job: Job, seat: Seat) -> Outcome | Lost:
        started = time.monotonic()
        builder = self.builders[seat.name]
        key: str | None = None
        snap = None
        try:
            self.events.put(Progress(job.name, "resolving"))
            snap = snapshot(self.root, job)
            key = self.key(builder, job, snap)
            if job.needs_root_parent:
                self.check_parent_user(builder, job)
            status, image_id = self.image(builder, seat, job, key, snap)
            pushed = job.push_tag if status == "pulled" else None
            digest = self.pulled_digest(builder, pushed)
            if self.options.push and job.push_tag and status != "pulled":  # pulled: it is there already
                digest = builder.push(image_id, job.push_tag, self.events.put, job.name)
                pushed = job.push_tag
            return Outcome(job.name, job.tag, status, key, time.monotonic() - started, image_id, pushed, digest)
        except ImageFailed as exc:
            if exc.engine_down and self.pool:
                return Lost(job.name, seat.name, str(exc))
            found = instruction_at(snap.dockerfile_bytes, exc.step) if snap and exc.step else None
            return Outcome(job.name, job.tag, "failed", key, time.monotonic() - started, message=str(exc),
                           where=f"{job.dockerfile}:{found[0]}" if found else None,
                           instruction=found[1] if found else None, log=exc.log)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine error we did not foresee fails this image, not the run
            return Outcome(job.name, job.tag, "failed", key, time.monotonic() - started,
                           message=f"{type(exc).__name__}: {exc}")

    def key(self, builder: Builder, job: Job, snap: Snapshot) -> str:
        """The job's build key (its parents' keys are known: parents finish first)."""
        parent_tag = self.jobs[job.parent].tag if job.parent else None
        bases = {ref: self.base_key(builder, ref, job.name) for ref in from_lines(snap.dockerfile_bytes)
                 if ref != parent_tag}
        key = snap.key(parent_key=self.keys.get(job.parent) if job.parent else None, base_ids=bases,
                       checks=job.checks)
        with self.lock:
            self.keys[job.name] = key
        return key

    def image(self, builder: Builder, seat: Seat, job: Job, key: str, snap: Snapshot) -> tuple[str, str]:
        """(reused | pulled | built, the image's ID): one with this key on the engine, else from the registry
        (with --push, and always in a pool), else built now and checked (discarded when a check fails), then
        tagged."""
        if not self.options.fresh:
            image_id = builder.find(job, key)
            if image_id is not None:
                return "reused", image_id
            if self.options.push:
                image_id = builder.fetch(job, key, self.events.put)
                if image_id is not None:
                    return "pulled", image_id
        self.bring_parent(builder, seat, job)
        image_id = builder.build(job, key, snap, fresh=self.options.fresh, report=self.events.put,
                                 cancel=self.cancel)
        try:
            self.run_checks(builder, job, image_id)
        except (ImageFailed, Cancelled):
            builder.discard(image_id)
            raise
        builder.tag(image_id, job.tag)
        return "built", image_id

    def bring_parent(self, builder: Builder, seat: Seat, job: Job) -> None:
        """In a pool, the parent image on this member before the build: there already (with its key), or pulled
        by its push tag and taken only when its build-key label matches."""
        if self.pool is None or job.parent not in self.jobs:
            return
        with self.lock:
            if job.parent in seat.holds:
                return
            key = self.keys[job.parent]
        parent = self.jobs[job.parent]
        report = lambda progress: self.events.put(replace(progress, name=job.name))  # noqa: E731 - the child's row
        if builder.find(parent, key) is None and builder.fetch(parent, key, report) is None:
            raise ImageFailed(f"its parent image {parent.name} is not on builder '{seat.name}', and {parent.push_tag} "
                              "in the registry is not the one built in this run (its build-key label differs, or "
                              "it is not there)")
        with self.lock:
            seat.holds.add(parent.name)

    def base_key(self, builder: Builder, ref: str, name: str) -> str:
        """What the build key records for a parent from outside the project: a value every engine agrees on.
        A reference by digest is its digest; a parent dockwright.lock pins is the pinned index digest when the
        engine's image carries one of the pinned digests (pulled from the registry); else the engine's image
        ID, which dockerd (classic store), podman and buildah all make the digest of the image's config."""
        image_id = builder.base_id(ref, self.events.put, name)  # pulled when missing, as before
        if "@sha256:" in ref:
            return ref.split("@", 1)[1]
        pinned = self.options.locked.get(ref)
        if pinned and set(pinned) & builder.digests(ref):
            return pinned[0]
        return image_id

    def check_parent_user(self, builder: Builder, job: Job) -> None:
        """The Dockerfile switches to root for its installs and, with no user set, ends as root: right only
        when its parent runs as root, which compile could not know. Fail before building when it does not."""
        user = builder.user_of(job.from_ref)
        if user.split(":", 1)[0] in ("", "root", "0"):
            return
        names = ", ".join(f"'{name}'" for name in job.environments)
        who = f"environments {names} set" if len(job.environments) > 1 else f"environment {names} sets"
        raise ImageFailed(
            f"parent image {job.from_ref} runs as user '{user}', but {who} no user: its Dockerfile switches to root "
            f"for its installs and would end as root\n"
            f"hint: set user: {user.split(':', 1)[0]} to run as the parent's user, or user: root")

    def run_checks(self, builder: Builder, job: Job, image_id: str) -> None:
        for i, command in enumerate(job.checks, 1):
            self.events.put(Progress(job.name, "checking", i, len(job.checks), command))
            status, output = builder.check(image_id, command, self.cancel)
            if status != 0:
                lines = [line for line in output if line.strip()]
                raise ImageFailed(f"check failed (exit {status}): {command}", log=lines[-CHECK_LOG_TAIL:])

    def worker(self, seat: Seat, work: queue.Queue[Job | None]) -> None:
        while True:
            job = work.get()
            if job is None:
                return
            try:
                outcome = self.one(job, seat)
            except Cancelled:
                return
            self.events.put(outcome)

    # -- the schedule, on the main thread ---------------------------------------------------------

    def workers(self) -> tuple[dict[str, queue.Queue[Job | None]], list[tuple[threading.Thread, str]]]:
        """Each member's work queue and worker threads, started: as many as its slots (none for a member that is
        down); fewer when the system allows no more."""
        queues: dict[str, queue.Queue[Job | None]] = {name: queue.Queue() for name in self.seats}
        threads: list[tuple[threading.Thread, str]] = []
        for seat in self.seats.values():
            for i in range(seat.slots if seat.up else 0):
                label = f"{seat.name}-{i}" if self.pool else str(i)
                thread = threading.Thread(target=self.worker, args=(seat, queues[seat.name]), daemon=True,
                                          name=f"dockwright-build-{label}")
                try:
                    thread.start()
                except RuntimeError as exc:  # the system's limit on threads: build with those that started
                    if not threads:
                        raise BuildError(f"cannot start a build thread: {exc}") from None
                    seat.slots = i
                    if i == 0 and self.pool is not None:  # none on this member: it takes no image
                        seat.up = False
                        self.pool.down[seat.name] = f"cannot start a build thread: {exc}"
                    break
                threads.append((thread, seat.name))
        return queues, threads

    def submit_ready(self, queues: dict[str, queue.Queue[Job | None]]) -> None:
        """Each image whose parent (when it is one of the jobs) is done goes to its member, while slots are free;
        when no member is up any more, what waits fails."""
        for name, seat in self.placement.assign({n: o.status for n, o in self.outcomes.items()}):
            self.where[name] = seat
            queues[seat.name].put(self.jobs[name])
        if self.pool is not None and not any(seat.up for seat in self.seats.values()):
            for name in self.placement.drop():
                self.finished(Outcome(name, self.jobs[name].tag, "failed",
                                      message=f"every member of pool '{self.pool.endpoint.name}' is down"))

    def finished(self, event: Outcome) -> None:
        """An image's outcome; a failed one skips its descendants."""
        event = self.scrub.outcome(event)
        seat = self.where.pop(event.name, None)
        if seat is not None:
            self.placement.release(seat)
            if event.status in DONE:
                with self.lock:
                    seat.holds.add(event.name)
            if self.pool is not None:
                event = replace(event, builder=seat.name)
        self.outcomes[event.name] = event
        self.report(Progress(event.name, event.status, detail=event.message,
                             where=(event.builder or "") if event.status in DONE else ""))
        if event.status != "failed":
            return
        for child in descendants(list(self.jobs.values()), event.name):
            if child not in self.outcomes:
                self.outcomes[child] = Outcome(child, self.jobs[child].tag, "skipped",
                                               message=f"its parent image {event.name} failed")
                self.report(Progress(child, "skipped", detail=self.outcomes[child].message))

    def lost(self, event: Lost) -> None:
        """In a pool, a member's engine went away under an image: the member is down (what it holds with it),
        and the image starts again on another member, or fails when none is up."""
        seat = self.where[event.name]
        message = self.scrub.line(event.message)
        if seat.up:
            seat.up = False
            with self.lock:
                seat.holds.clear()
            if self.pool is not None:
                self.pool.down[seat.name] = message
        if any(s.up for s in self.seats.values()):
            del self.where[event.name]
            self.placement.release(seat)
            self.report(Progress(event.name, "queued", detail=f"builder '{seat.name}' is down: placed again"))
            self.placement.again(event.name)
            return
        self.finished(Outcome(event.name, self.jobs[event.name].tag, "failed", message=message))

    def run(self) -> list[Outcome]:
        queues, threads = self.workers()
        for name in self.order:
            self.report(Progress(name, "queued"))
        try:
            self.submit_ready(queues)
            while len(self.outcomes) < len(self.order):
                try:
                    event = self.events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if isinstance(event, Progress):
                    self.report(self.scrub.progress(event))
                    continue
                if isinstance(event, Lost):
                    self.lost(event)
                else:
                    self.finished(event)
                self.submit_ready(queues)
        except KeyboardInterrupt:
            self.cancel.set()
            deadline = time.monotonic() + 3
            for thread, _ in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            raise Interrupted([self.outcomes[name] for name in self.order if name in self.outcomes]) from None
        finally:
            for _, name in threads:
                queues[name].put(None)
        return [self.outcomes[name] for name in self.order]


def build_all(backend: Builder | Pool, jobs: Sequence[Job], root: Path, options: Options,
              report: Callable[[Progress], None]) -> list[Outcome]:
    """Every job, parents first, on one builder or spread over a pool's members; a failed image skips its
    descendants and nothing else."""
    return _Run(backend, jobs, root, options, report).run()
