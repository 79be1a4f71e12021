"""The files a project points at: existence checks, and requirements files read and parsed once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from . import dockerignore, reads
from .errors import Collector, Location, inside
from .load import Located, read_text
from .record import PACKAGE_FILES  # what makes a directory installable by pip or uv
from .model import Origin, Project, Sourced, referenced_files
from .credentials import REQUIREMENTS_WRITTEN, credentials_hint, masked_credentials
from .schema import LOCAL_HINT, local_requirement

_INDEX_HINT = "set index_url or extra_index_urls on the environment in dockwright.yaml instead"
_LINKS_HINT = "pass it to the installer instead: installer_args: [--find-links, URL]"
_OPTION_HINTS = {
    "-i": _INDEX_HINT,
    "--index-url": _INDEX_HINT,
    "--extra-index-url": _INDEX_HINT,
    "-f": _LINKS_HINT,
    "--find-links": _LINKS_HINT,
    "-e": LOCAL_HINT,
    "--editable": LOCAL_HINT,
    "-c": "constraints files are not supported; pin the versions in the requirements",
    "--constraint": "constraints files are not supported; pin the versions in the requirements",
}


@dataclass
class Inputs:
    """What compile read from the project besides YAML."""

    requirements: dict[str, tuple[Sourced[str], ...]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # path -> "file" | "dir"
    digests: dict[str, str] = field(default_factory=dict)  # custom parent Dockerfiles -> sha256
    dockerfiles: dict[str, bytes] = field(default_factory=dict)  # custom parent Dockerfiles -> their bytes
    files: list[str] = field(default_factory=list)  # every file read, for the manifest
    dockerignore: dockerignore.Matcher | None = None  # the project root's .dockerignore, if any


_UNREADABLE_HINT = "check that it is readable and that its links lead to a file"
_OUTSIDE_HINT = "dockwright reads only files inside the directory of dockwright.yaml; move the file into the project"


def _probe(root: Path, rel: str) -> str:
    """What root/rel is: file, dir, special, missing, outside (its real location is outside the project,
    through a symbolic link), or `error:<reason>`. Links that stay inside the project are followed."""
    reads.note_probe(root / rel)
    real_root = os.path.realpath(root)
    real = os.path.realpath(root / rel)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        return "outside"
    try:
        mode = os.stat(root / rel).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        return f"error:{exc.strerror}"
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "special"


def _read_bytes(path: Path) -> bytes:
    """A regular file's bytes, opened without blocking (a FIFO put in its place cannot hang compile)."""
    reads.look(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        data = handle.read()
    reads.note(path, data)
    return data


def gather(project: Project, root: Path, sink: Collector, doc: Located | None = None) -> Inputs:
    """Check that referenced paths exist and stay inside the project, read requirements files and
    .dockerignore; problems go to sink."""
    inputs = Inputs()
    inputs.dockerignore = _dockerignore(root, sink)
    _check_tls_files(project, root, sink, doc)
    checked: dict[tuple[str, str], tuple[str, str] | None] = {}  # (kind, path) -> its problem, checked once
    private = _private_files(project, root)
    for kind, rel, loc in referenced_files(project):
        if kind in ("copy", "certificate", "local_package"):
            _ignored(inputs.dockerignore, kind, rel, loc, sink, root=root)
        if kind in ("copy", "local_package"):
            _copies_a_private_file(private, inputs.dockerignore, kind, rel, loc, sink)
        if kind == "requirements":
            if rel not in inputs.requirements:
                inputs.requirements[rel] = tuple(_RequirementsReader(root, sink, inputs).read(rel, loc))
        elif kind in _CHECKED_ONCE:
            _check_once(kind, rel, loc, root, sink, inputs, checked)
        else:
            _check_path(kind, rel, loc, root, sink, inputs)
    inputs.files = sorted(set(inputs.files))
    return inputs


def _check_tls_files(project: Project, root: Path, sink: Collector, doc: Located | None) -> None:
    """A builder's tls files are read by dockwright on this machine: none may lead outside the project, and
    none may be a FIFO, a device or a folder (one that is missing here may be there when building)."""
    for name, builder in sorted(project.builders.items()):
        for key, value in builder.tls:
            found = _probe(root, value) if isinstance(value, str) else "file"
            at = doc.at(("builders", name, "tls", key)) if doc is not None else builder.location
            if found == "outside":
                sink.error(at, f"tls {key} file '{value}' leads outside the project directory through a symbolic link",
                           _OUTSIDE_HINT)
            elif found == "special":  # a folder is told at build time; a FIFO would hang reading it
                sink.error(at, f"tls {key} file '{value}' is not a regular file", "name a PEM file")


def _probe_problem(what: str, rel: str, found: str) -> tuple[str, str] | None:
    """(message, hint) for a path _probe found outside the project or unreadable."""
    if found == "outside":
        return f"{what} '{rel}' leads outside the project directory through a symbolic link", _OUTSIDE_HINT
    if found.startswith("error:"):
        return f"{what} '{rel}' cannot be read: {found[6:]}", _UNREADABLE_HINT
    return None


_PATH_WHAT = {"copy": "copy source", "dockerfile": "Dockerfile", "context": "build context"}


def _check_path(kind: str, rel: str, loc: Location | None, root: Path, sink: Collector, inputs: Inputs) -> None:
    """A copy source, custom parent Dockerfile (read, for its digest) or build context: it exists, is of
    the right kind and stays inside the project."""
    what = _PATH_WHAT[kind]
    found = _probe(root, rel)
    problem = _probe_problem(what, rel, found)
    if problem is None and found == "missing":
        problem = f"{what} '{rel}' does not exist", "paths are relative to the directory of dockwright.yaml"
    if problem is None and found == "special":
        problem = f"{what} '{rel}' is not a regular file or directory", "name a file or a directory"
    if problem is not None:
        sink.error(loc, *problem)
        return
    is_dir = found == "dir"
    inputs.kinds[rel] = "dir" if is_dir else "file"
    if kind == "dockerfile":
        _read_dockerfile(rel, loc, root, sink, inputs, is_dir=is_dir)
    elif kind == "context" and not is_dir:
        sink.error(loc, f"build context '{rel}' is not a directory", "name a directory, like '.'")


def _read_dockerfile(rel: str, loc: Location | None, root: Path, sink: Collector, inputs: Inputs, *,
                     is_dir: bool) -> None:
    if is_dir:
        sink.error(loc, f"Dockerfile '{rel}' is a directory", "name the file, like docker/base.Dockerfile")
        return
    try:
        inputs.dockerfiles[rel] = _read_bytes(root / rel)
    except OSError as exc:
        sink.error(loc, f"Dockerfile '{rel}' cannot be read: {exc.strerror}", "check its permissions")
        return
    inputs.digests[rel] = hashlib.sha256(inputs.dockerfiles[rel]).hexdigest()
    inputs.files.append(rel)


def _dockerignore(root: Path, sink: Collector) -> dockerignore.Matcher | None:
    """The project root's .dockerignore, the one `docker build ... .` applies to generated Dockerfiles."""
    found = _probe(root, dockerignore.FILE)
    if found == "missing":
        return None
    if found != "file":
        what = ("leads outside the project directory through a symbolic link" if found == "outside"
                else "is not a regular file")
        sink.warn(None, f"{dockerignore.FILE} {what}; compile did not read it", _OUTSIDE_HINT)
        return None
    try:
        text = _read_bytes(root / dockerignore.FILE).decode("utf-8", "replace")
    except OSError as exc:
        sink.warn(None, f"{dockerignore.FILE} cannot be read: {exc.strerror}; compile did not check it")
        return None
    matcher = dockerignore.Matcher(dockerignore.parse(text))
    for problem in matcher.errors:
        sink.warn(None, f"{dockerignore.FILE}: {problem}; docker build fails on it", "fix or remove the pattern")
    return matcher


def _ignored(matcher: dockerignore.Matcher | None, kind: str, rel: str, loc: Location | None,
             sink: Collector, *, root: Path) -> None:
    if matcher is None:
        return
    norm = posixpath.normpath(rel)
    what = {"copy": "copy source", "certificate": "certificate", "local_package": "local package"}[kind]
    left_out = norm if norm != "." and matcher.matches(norm) else None
    if left_out is None and kind == "local_package":  # the package builds only with its build file
        left_out = next((f for f in (posixpath.normpath(f"{norm}/{name}") for name in PACKAGE_FILES)
                         if (root / f).is_file() and matcher.matches(f)), None)
    if left_out is None:
        return
    whose = "" if left_out == norm else f" ('{left_out}')"
    sink.warn(loc, f"{dockerignore.FILE} leaves out {what} '{rel}'{whose}, so building the generated Dockerfiles fails",
              f"remove the pattern that matches it, or add '!{left_out}' after it")


def _private_files(project: Project, root: Path) -> list[tuple[str, str, str]]:
    """(project-relative path, whose it is, what to do instead) of each file in the project that must never be
    copied into an image: a builder's tls key, and the file a build secret is read from."""
    found = []
    for name, builder in sorted(project.builders.items()):
        for key, value in builder.tls:
            if key == "key" and isinstance(value, str):
                found.append((posixpath.normpath(value), f"the private key of builder '{name}'",
                              "keep the key outside what copy and local_packages name"))
    for env_name, env in sorted(project.environments.items()):
        for secret_id, source in env.secrets:
            where = source.value[5:] if source.value and source.value.startswith("file ") else None
            if where is None or where.startswith("~"):
                continue
            rel = os.path.relpath(os.path.normpath(root / where), root) if posixpath.isabs(where) else where
            if rel != ".." and not rel.startswith("../"):
                found.append((posixpath.normpath(rel), f"the file of secret '{secret_id}' (environment '{env_name}')",
                              "keep the secret's file outside what copy and local_packages name"))
    return found


def _copies_a_private_file(private: list[tuple[str, str, str]], matcher: dockerignore.Matcher | None, kind: str,
                           rel: str, loc: Location | None, sink: Collector) -> None:
    """A located error when a copy or local package source is, or holds, a file _private_files names that
    .dockerignore does not leave out: it would be baked into the image's COPY layer."""
    norm = posixpath.normpath(rel)
    what = "copy source" if kind == "copy" else "local package"
    for path, whose, instead in private:
        if not (norm == "." or path == norm or path.startswith(norm + "/")):
            continue
        parts = path.split("/")
        if matcher is not None and any(matcher.matches("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            continue
        sink.error(loc, f"{what} '{rel}' holds {whose} ('{path}'), which would be copied into the image",
                   f"add '{path}' to {dockerignore.FILE}, or {instead}")


def ignored_output(matcher: dockerignore.Matcher | None, output: str, files: dict[str, str]) -> str | None:
    """The first generated file that a Dockerfile copies and .dockerignore leaves out, if any."""
    if matcher is None:
        return None
    out = posixpath.normpath(output)
    for rel in sorted(files):
        if rel != "manifest.json" and not rel.endswith("/Dockerfile") and matcher.matches(f"{out}/{rel}"):
            return f"{out}/{rel}"
    return None


_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
# A private key in any of the text forms keys are kept in: PEM (PKCS#1/#8, EC, encrypted, OpenSSH), PGP, PuTTY.
PRIVATE_KEY_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-")
_PEM_PRIVATE_KEY = PRIVATE_KEY_RE
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_CERT_BEGIN, _CERT_END = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
ONLY_CERTIFICATES_HINT = ("everything in the file is copied into the image, so it may hold only -----BEGIN CERTIFICATE----- "
                          "blocks, blank lines and # comment lines; keep only the certificates: "
                          "openssl x509 -in FILE -out FILE")


def _not_only_certificates(data: bytes) -> str | None:
    """Why data is more than PEM CERTIFICATE blocks with base64 bodies, blank lines and `#` comment lines
    (the line, never its text: it may be a secret), or None."""
    body: list[bytes] | None = None
    start = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if body is None:
            if line == _CERT_BEGIN:
                body, start = [], number
            elif line.strip(b" \t") and not line.startswith(b"#"):
                return f"line {number} is not part of a certificate"
        elif line == _CERT_END:
            joined = b"".join(body)
            try:
                decoded = base64.b64decode(joined, validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            if not decoded or len(joined) % 4 or any(b"=" in chunk for chunk in body[:-1]):
                return f"the certificate at line {start} has a body that is not base64"
            body = None
        elif _BASE64_LINE.fullmatch(line):
            body.append(line)
        else:
            return f"the certificate at line {start} has a body that is not base64 (line {number})"
    if body is not None:
        return f"the certificate at line {start} has no -----END CERTIFICATE----- line"
    return None


def _certificate_problem(root: Path, rel: str) -> tuple[str, str] | None:
    """(message, hint) unless root/rel is a PEM file of public certificates (read to check, never copied out)."""
    found = _probe(root, rel)
    if found == "outside":
        return f"certificate '{rel}' leads outside the project directory through a symbolic link", _OUTSIDE_HINT
    if found == "missing":
        return f"certificate '{rel}' does not exist", "paths are relative to the directory of dockwright.yaml"
    if found.startswith("error:"):
        return f"certificate '{rel}' cannot be read: {found[6:]}", _UNREADABLE_HINT
    if found != "file":
        return f"certificate '{rel}' is not a file", "name a PEM file, like certs/corp-root.pem"
    try:
        data = _read_bytes(root / rel)
    except OSError as exc:
        return f"certificate '{rel}' cannot be read: {exc.strerror}", "check its permissions"
    if _PEM_PRIVATE_KEY.search(data):
        return (f"certificate '{rel}' holds a private key",
                "list only public CA certificates: a key copied into an image can be read by anyone who has the image")
    if _PEM_CERTIFICATE not in data:
        return (f"certificate '{rel}' holds no PEM certificate",
                ("give a file with -----BEGIN CERTIFICATE----- blocks; convert a DER file with "
                 "openssl x509 -inform der -in FILE -out FILE.pem"))
    problem = _not_only_certificates(data)
    if problem is not None:
        return f"certificate '{rel}' holds more than certificates: {problem}", ONLY_CERTIFICATES_HINT
    return None


def _stays_inside(path: Path, root: Path) -> bool:
    try:
        inside(path, root)
    except OSError:
        return False
    return True


def _local_package_problem(root: Path, rel: str) -> tuple[str, str] | None:
    """(message, hint) unless rel is a directory inside the project (after symlinks) that pip can install."""
    path = root / rel
    reads.note_probe(path)
    for name in PACKAGE_FILES:
        reads.note_probe(path / name)
    try:
        if not path.exists():
            return f"local package '{rel}' does not exist", "paths are relative to the directory of dockwright.yaml"
        try:
            path.resolve().relative_to(root.resolve())
        except ValueError:
            return (f"local package '{rel}' reaches outside the project directory",
                    "keep the package under the directory of dockwright.yaml; the build context holds nothing else")
        if not path.is_dir():
            return (f"local package '{rel}' is not a directory",
                    "name the directory that holds the package's pyproject.toml, like libs/featurelib")
        if not any((path / name).is_file() for name in PACKAGE_FILES):
            return (f"local package '{rel}' has no pyproject.toml, setup.py or setup.cfg",
                    "name the directory pip would install, the one that holds the package's pyproject.toml")
        for name in PACKAGE_FILES:  # dockwright lock reads them: like every path, inside the project
            if (path / name).is_symlink() and not _stays_inside(path / name, root):
                return (f"local package '{rel}': its {name} leads outside the project directory through a symbolic "
                        "link", "make it a file of the package, not a link to one elsewhere")
    except (OSError, RuntimeError) as exc:  # unreadable, or a symlink loop (RuntimeError before Python 3.13)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a symlink loop"
        return f"local package '{rel}' cannot be read: {reason}", "check its permissions and symlinks"
    return None


def _check_once(kind: str, rel: str, loc: Location | None, root: Path, sink: Collector, inputs: Inputs,
                checked: dict[tuple[str, str], tuple[str, str] | None]) -> None:
    """A certificate or local package, checked the first time it is named; its problem at every place."""
    if (kind, rel) not in checked:
        problem_of, path_kind, listed = _CHECKED_ONCE[kind]
        checked[(kind, rel)] = problem = problem_of(root, rel)
        if problem is None:
            inputs.kinds[rel] = path_kind
            if listed:  # read to check it: the manifest lists it
                inputs.files.append(rel)
    problem = checked[(kind, rel)]
    if problem is not None:
        sink.error(loc, *problem)


# kind -> (its problem, the kind of path it is, whether compile read it)
_CHECKED_ONCE: dict[str, tuple[Callable[[Path, str], tuple[str, str] | None], str, bool]] = {
    "certificate": (_certificate_problem, "file", True),
    "local_package": (_local_package_problem, "dir", False),
}


_COMMENT = re.compile(r"(^|\s+)#.*\Z")


def _logical_lines(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each logical line: a line ending in a backslash goes on in the next."""
    logical = ""
    start = 0
    for number, line in enumerate(lines, start=1):
        if not logical:
            start = number
        if line.endswith("\\"):
            logical += line[:-1]
            continue
        yield start, logical + line
        logical = ""


class _RequirementsReader:
    """One requirements file named in the YAML and those it names with -r, each read once (as pip does);
    a package listed twice differently is an error."""

    def __init__(self, root: Path, sink: Collector, inputs: Inputs) -> None:
        self.root, self.sink, self.inputs = root, sink, inputs
        self.seen: dict[str, tuple[str, str]] = {}  # package -> (requirement, where)
        self.opened: set[str] = set()
        self.reading: list[str] = []  # the chain of -r lines to the file being read

    def read(self, rel: str, at: Location | None, *, depth: int = 0, nested: bool = False) -> list[Sourced[str]]:
        """The requirements of rel (a path from the project root), located; problems go to the sink."""
        if rel in self.reading:  # a loop, which pip refuses ("recursively references itself")
            loop = " -> ".join([*self.reading[self.reading.index(rel):], rel])
            self.sink.error(at, f"requirements file '{rel}' names itself through -r lines: {loop}",
                            "remove the -r line that closes the loop; pip refuses it too")
            return []
        if rel in self.opened:  # already read through another -r line (pip reads it once, too)
            return []
        self.opened.add(rel)
        path = self.root / rel
        if not self._readable(rel, at, depth=depth, nested=nested):
            return []
        self.reading.append(rel)
        try:
            return self._lines(rel, path, at, depth)
        finally:
            self.reading.pop()

    def _lines(self, rel: str, path: Path, at: Location | None, depth: int) -> list[Sourced[str]]:
        text = read_text(path, self.sink, at=at)
        if text is None:
            return []
        self.inputs.files.append(rel)
        lines = text.split("\n")
        out: list[Sourced[str]] = []
        for start, logical in _logical_lines(lines):
            stripped = _COMMENT.sub("", logical).strip()
            if not stripped:
                continue
            first = lines[start - 1]
            loc = Location(path, start, len(first) - len(first.lstrip()) + 1, first)
            if stripped.startswith("-"):
                out.extend(self._option(stripped, loc, rel, depth))
            else:
                out.extend(self._requirement(stripped, loc, f"{rel}:{start}"))
        return out

    def _readable(self, rel: str, at: Location | None, *, depth: int, nested: bool) -> bool:
        if depth > 10:
            self.sink.error(at, f"requirements files nest more than 10 deep at '{rel}'", "look for a loop of -r lines")
            return False
        found = _probe(self.root, rel)
        if found == "file":
            return True
        problem = _probe_problem("requirements file", rel, found)
        if problem is None:
            kind = {"missing": "does not exist", "dir": "is a directory"}.get(found, "is not a regular file")
            problem = (f"requirements file '{rel}' {kind}", "a -r path is relative to the file that names it" if nested
                       else "paths are relative to the directory of dockwright.yaml")
        self.sink.error(at, *problem)
        return False

    def _option(self, stripped: str, loc: Location, rel: str, depth: int) -> list[Sourced[str]]:
        """An option line: `-r FILE` (read in turn, relative to this file); any other option is an error."""
        option, _, value = stripped.replace("=", " ", 1).partition(" ")
        value = value.strip()
        if option.startswith("-r") and len(option) > 2 and not value:  # -rFILE, as pip reads it
            option, value = "-r", option[2:]
        if option not in ("-r", "--requirement"):
            self.sink.error(loc, f"option '{option}' is not supported in requirements files",
                            _OPTION_HINTS.get(option, "list only requirements, one per line"))
            return []
        if not value:
            self.sink.error(loc, f"option '{option}' needs a file name", f"write {option} FILE")
            return []
        child = posixpath.normpath(posixpath.join(posixpath.dirname(rel), value))
        if child == ".." or child.startswith("../") or value.startswith("/"):
            self.sink.error(loc, f"'{value}' points outside the project directory",
                            "keep requirements files under the directory of dockwright.yaml")
            return []
        return self.read(child, loc, depth=depth + 1, nested=True)

    def _requirement(self, stripped: str, loc: Location, where: str) -> list[Sourced[str]]:
        """A requirement line: one PEP 508 requirement with no option, local path or credentials; a
        package already listed is kept once."""
        problem = _option_after(stripped)
        stripped = " ".join(stripped.split())  # a continued line keeps no run of spaces
        problem = problem or _local_or_credentials(stripped)
        if problem is not None:
            self.sink.error(loc, *problem)
            return []
        try:
            req = Requirement(stripped)
        except InvalidRequirement as exc:
            self.sink.error(loc, f"invalid requirement '{stripped}': {str(exc).splitlines()[0]}",
                            "write one PEP 508 requirement per line, like 'pandas==2.2.2'")
            return []
        name = canonicalize_name(req.name)
        if name in self.seen:
            first_text, first_at = self.seen[name]
            if first_text != stripped:
                self.sink.error(loc, f"requirement '{req.name}' is listed twice, differently",
                                f"first as '{first_text}' at {first_at}; keep one")
            return []
        self.seen[name] = (stripped, where)
        return [Sourced(stripped, Origin(loc))]


def _option_after(stripped: str) -> tuple[str, str] | None:
    """(message, hint) for an option after the requirement, like --hash=..."""
    if " -" not in stripped:
        return None
    option = next(w for w in stripped.split() if w.startswith("-")).split("=")[0]
    return (f"option '{option}' on a requirement line is not supported",
            "dockwright merges requirements from several places, which hash-checking cannot follow; "
            "pin versions without --hash" if option == "--hash" else "write only the requirement")


def _local_or_credentials(stripped: str) -> tuple[str, str] | None:
    """(message, hint) for a requirement that is a local path or carries credentials."""
    masked = masked_credentials(stripped)
    if local_requirement(stripped):
        return f"requirement '{masked or stripped}' is a local path", LOCAL_HINT
    if masked is not None:
        return f"requirement '{masked}' carries credentials", credentials_hint(REQUIREMENTS_WRITTEN)
    return None
