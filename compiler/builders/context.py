"""The build context of one image: exactly the files it copies, as Docker sees them (.dockerignore applied),
their digests for the build key, and the tar sent to the engine."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence

from ..dockerignore import Matcher, parse
from ..errors import kind_of, read_regular, shown_path
from ..inputs import PRIVATE_KEY_RE
from .base import ImageFailed, Job

# Bump when the build key's recipe changes, so that no image is reused under a key meaning something else.
KEY_FORMAT = 2
OUTSIDE_DOCKERFILE = ".dockwright.Dockerfile"


@dataclass(frozen=True)
class Entry:
    path: str  # inside the context, "/"-separated
    source: Path
    kind: str  # file | dir | link
    mode: int
    digest: str  # sha256 of the content, the link target, or "" for a directory


@dataclass(frozen=True)
class Snapshot:
    """What the engine will see: the Dockerfile (path inside the context) and every copied entry."""

    dockerfile: str
    dockerfile_bytes: bytes
    entries: tuple[Entry, ...]

    def key(self, *, parent_key: str | None, base_ids: Mapping[str, str], checks: Sequence[str] = ()) -> str:
        """The build key: everything that can change the image or whether it is accepted, nothing else."""
        recipe = {
            "format": KEY_FORMAT,
            "dockerfile": hashlib.sha256(significant(self.dockerfile_bytes)).hexdigest(),
            "checks": list(checks),
            # the Dockerfile is in the context too, but counts above, without its comments
            "files": [[e.path, e.kind, e.mode & 0o111 != 0, e.digest] for e in self.entries
                      if e.path != self.dockerfile],
            "parent": parent_key,
            "bases": dict(sorted(base_ids.items())),
        }
        text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def write_tar(self, out: IO[bytes], extra: Mapping[str, bytes] | None = None) -> None:
        """The context as a tar; `extra` adds files (name: bytes, mode 0600) that the engine takes out before it
        builds (podman's build secrets): never part of the key."""
        with tarfile.open(fileobj=out, mode="w") as tar:
            for e in self.entries:
                info = tar.gettarinfo(str(e.source), arcname=e.path)
                # Ownership on this machine means nothing in the image (COPY makes files root's).
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if e.kind == "file":
                    with _open_regular(e.source) as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
            if self.dockerfile == OUTSIDE_DOCKERFILE:
                info = tarfile.TarInfo(OUTSIDE_DOCKERFILE)
                info.size = len(self.dockerfile_bytes)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(self.dockerfile_bytes))
            for name, data in sorted((extra or {}).items()):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
        out.seek(0)


DIRECTIVE = re.compile(rb"^#\s*(syntax|escape|check)\s*=", re.IGNORECASE)


def significant(dockerfile: bytes) -> bytes:
    """The Dockerfile without comments and blank lines, which cannot change the image (a header
    naming one more deduplicated environment must not rebuild it); parser directives stay."""
    kept = []
    leading = True
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if leading and DIRECTIVE.match(stripped):
            kept.append(stripped)
            continue
        if stripped.startswith(b"#") or not stripped:
            continue
        leading = False
        kept.append(line.rstrip())
    return b"\n".join(kept)


def _ignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    return parse(read_regular(path).decode("utf-8", errors="replace"))


class _PrivateKey(Exception):
    """A file the build would send holds a private key."""


def _digest(path: Path) -> str:
    """The file's sha256; _PrivateKey when it holds a private key (PEM, OpenSSH, PGP, PuTTY) anywhere."""
    h = hashlib.sha256()
    tail = b""
    with _open_regular(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            if PRIVATE_KEY_RE.search(tail + chunk):
                raise _PrivateKey(path)
            tail = chunk[-64:]  # a marker split between two chunks
    return h.hexdigest()


def _open_regular(path: Path) -> IO[bytes]:
    """A file of the build context, opened without blocking: a FIFO or a device put in a file's place is
    ImageFailed saying what it is (reading it would hang the build, or never end)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    handle = os.fdopen(fd, "rb")
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        handle.close()
        raise ImageFailed(f"{shown_path(path)} in the build context is {kind_of(mode)}, not a regular file; nothing "
                          "was sent to the engine"
                          "\nhint: remove it, or leave it out with .dockerignore")
    return handle


def _entry(context: Path, path: Path) -> Entry:
    st = path.lstat()
    rel = path.relative_to(context).as_posix()
    if stat.S_ISLNK(st.st_mode):
        return Entry(rel, path, "link", st.st_mode, os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Entry(rel, path, "dir", st.st_mode, "")
    return Entry(rel, path, "file", st.st_mode, _digest(path))


def _walk(context: Path, start: Path, matcher: Matcher) -> Iterator[Entry]:
    """start and everything below it that .dockerignore keeps, parents before children, sorted."""
    rel = start.relative_to(context).as_posix()
    if rel != "." and matcher.matches(rel):
        if not start.is_dir() or start.is_symlink():
            return
        # An excluded directory is still entered when a later `!pattern` may bring something back.
        if not matcher.may_bring_back(rel):
            return
    else:
        if rel != ".":
            yield _entry(context, start)
    if start.is_dir() and not start.is_symlink():
        for child in sorted(start.iterdir(), key=lambda p: p.name):
            yield from _walk(context, child, matcher)


def snapshot(root: Path, job: Job) -> Snapshot:
    """The files job copies, read now; ImageFailed when one disappeared since compile."""
    context = (root / job.context).resolve()
    dockerfile = (root / job.dockerfile).resolve()
    try:
        dockerfile_bytes = read_regular(dockerfile)
    except OSError as exc:
        raise ImageFailed(f"cannot read {job.dockerfile}: {exc.strerror}; run 'dockwright compile'") from exc
    try:
        return _snapshot(root, job, context, dockerfile, dockerfile_bytes)
    except _PrivateKey as exc:
        path = Path(exc.args[0])
        base = root.resolve()
        shown = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()
        ignore = (context / ".dockerignore").relative_to(base).as_posix() if context.is_relative_to(base) \
            else ".dockerignore"
        raise ImageFailed(f"{shown} holds a private key, and building {job.dockerfile} would copy it into the image; "
                          f"nothing was sent to the engine\nhint: add '{path.relative_to(context).as_posix()}' to "
                          f"{ignore}, or move the key out of what copy and local_packages name") from None


def _snapshot(root: Path, job: Job, context: Path, dockerfile: Path, dockerfile_bytes: bytes) -> Snapshot:
    try:
        in_context = dockerfile.relative_to(context).as_posix()
    except ValueError:
        in_context = OUTSIDE_DOCKERFILE
    matcher = Matcher(_ignore_patterns(context))
    if matcher.errors:
        raise ImageFailed(f"{(context / '.dockerignore').relative_to(root).as_posix()}: {matcher.errors[0]}")
    seen: dict[str, Entry] = {}
    for item in job.inputs:
        _add(seen, root, job, item, context, dockerfile, matcher)
    if in_context != OUTSIDE_DOCKERFILE:
        seen[in_context] = _entry(context, dockerfile)
    return Snapshot(in_context, dockerfile_bytes, tuple(seen[k] for k in sorted(seen)))


def _add(seen: dict[str, Entry], root: Path, job: Job, item: str, context: Path, dockerfile: Path,
         matcher: Matcher) -> None:
    """One input of the job, with the folders above it and everything below it that .dockerignore keeps."""
    start = (root / item).resolve() if not (root / item).is_symlink() else root / item
    if start == dockerfile or not start.is_relative_to(context):
        return  # the Dockerfile counts apart; a parent Dockerfile may be kept outside its own context
    if not start.exists() and not start.is_symlink():
        raise ImageFailed(f"{item} is copied by {job.dockerfile} but does not exist")
    rel = start.relative_to(context).as_posix()
    if rel != "." and matcher.matches(rel):
        ignore = (context / ".dockerignore").relative_to(root)
        raise ImageFailed(f"{item} is copied by {job.dockerfile}, but {ignore.as_posix()} leaves it out of the "
                          f"build context\nhint: remove the pattern that matches it, or add '!{rel}' after it")
    # The directories above an input are part of the context too (COPY src/app/ needs src/).
    for parent in reversed(start.relative_to(context).parents[:-1]):
        if parent.as_posix() not in seen and not matcher.matches(parent.as_posix()):
            seen[parent.as_posix()] = _entry(context, context / parent)
    for e in _walk(context, start, matcher):
        seen.setdefault(e.path, e)


def from_lines(dockerfile: bytes) -> list[str]:
    """The images a hand-written Dockerfile starts FROM, stage names and ARG-made names left out."""
    stages: set[str] = set()
    refs: list[str] = []
    text = dockerfile.decode("utf-8", errors="replace").replace("\\\n", " ")
    for line in text.split("\n"):  # only "\n" ends a Dockerfile line (not U+2028 and the like)
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if not args:
            continue
        ref = args[0]
        if len(args) >= 3 and args[1].upper() == "AS":
            stages.add(args[2].lower())
        if ref.lower() in stages or "$" in ref or ref == "scratch":
            continue
        if ref not in refs:
            refs.append(ref)
    return refs


def instructions(dockerfile: bytes) -> list[tuple[int, str]]:
    """The line number and text of every instruction, as the classic builder counts steps."""
    found: list[tuple[int, str]] = []
    continued = False
    lines = dockerfile.decode("utf-8", errors="replace").split("\n")  # as BuildKit: only "\n" ends a line
    start, parts = 0, list[str]()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not continued:
            if not stripped or stripped.startswith("#"):
                continue
            start, parts = number, []
        elif stripped.startswith("#"):
            continue
        parts.append(stripped.rstrip("\\").strip())
        continued = stripped.endswith("\\")
        if not continued:
            found.append((start, " ".join(p for p in parts if p)))
    return found


def instruction_at(dockerfile: bytes, step: int) -> tuple[int, str] | None:
    """The line number and text of the step-th instruction, as the classic builder counts steps."""
    found = instructions(dockerfile)
    return found[step - 1] if 0 < step <= len(found) else None
