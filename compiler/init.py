"""`dockwright init`: a starting dockwright.yaml from what a project already has; pure until written."""

from __future__ import annotations

import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .errors import Diagnostic, inside, read_inside, shown_path
from .inputs import _COMMENT, _logical_lines
from .load import scalar
from .record import PACKAGE_FILES
from .credentials import masked_credentials
from .schema import index_url_problem, requirement_problem

DEFAULT_PYTHON = "3.12"
# The Python versions init proposes: CPython 3 minors with official python:X-slim images.
KNOWN_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
_NAME_CHARS = re.compile(r"[^a-z0-9]+")
# What .python-version may say for a CPython 3 minor (pyenv's and uv's ways): 3.11, 3.11.4, 3.13.0rc1, 3.12-dev,
# cpython@3.12, cpython-3.12, 3.11.4/envs/NAME. Not pypy3.10, 3.13t (free-threaded), graalpy or 2.7.
_VERSION_FILE = re.compile(r"(?:cpython[-@]?)?3\.(?P<minor>[0-9]{1,2})(?:\.[0-9]+)?(?:(?:a|b|rc)[0-9]+|-dev)?"
                           r"(?:/envs/[^/\s]+)?")
PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class Wanted:
    """A requirement init found: its text, the file it came from, and whether it is written inline (a
    requirement from pyproject.toml or a requirements file taken apart) or read from a named requirements file."""

    text: str
    origin: str
    inline: bool = True

    @property
    def name(self) -> str:
        return str(canonicalize_name(Requirement(self.text).name))


@dataclass
class Found:
    """What init learned from the project directory, each fact with the file it came from."""

    project: str
    python: str
    python_from: str | None = None
    requirements_files: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)  # what is written inline: settle() makes it from wanted
    wanted: list[Wanted] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # the requirements files read (named, taken apart or through -r)
    local_packages: list[str] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    installer_args: list[str] = field(default_factory=list)
    dockerfile: str | None = None
    dockerfile_from: str | None = None  # the image its last stage starts from, when that is an official python one
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def project_name(raw: str) -> str:
    """A valid `project:` from any name: lowercase, runs of other characters become one '-'."""
    name = _NAME_CHARS.sub("-", raw.lower()).strip("-")[:63].strip("-")
    return name or "app"


def _usable(root: Path, name: str, found: Found) -> bool:
    """name (in the project's folder) is a regular file inside the project; one that leads out of it through a
    symbolic link is a note, and is not read."""
    path = root / name
    if not (path.is_file() or path.is_symlink()):
        return False
    if not _is_file(root, name):
        if path.is_symlink():
            found.notes.append(f"{name} leads outside the project directory through a symbolic link: init did not "
                               "read it")
        return False
    return True


def _read_toml(path: Path, found: Found) -> dict[str, Any]:
    try:
        data = tomllib.loads(read_inside(path, path.parent).decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        found.notes.append(f"{path.name} was not read: {exc}")
        return {}
    except RecursionError:  # tomllib recurses once per nested array or table
        found.notes.append(f"{path.name} was not read: not valid TOML: arrays or tables nested too deeply")
        return {}
    return data


def _chosen_minor(spec: str) -> str | None:
    """The Python minor for a requires-python (PEP 440, or Poetry's ^ and ~): the default when it
    admits it, else the newest it admits below the default, else the oldest above."""
    text = _poetry_version(spec.strip()) if spec.strip() else ""
    try:
        allowed = SpecifierSet(text)
    except InvalidSpecifier:
        return None
    admitted = [m for m in KNOWN_PYTHONS if allowed.contains(f"{m}.0", prereleases=True)
                or allowed.contains(f"{m}.99", prereleases=True)]
    if not admitted:
        return None
    default = KNOWN_PYTHONS.index(DEFAULT_PYTHON)
    below = [m for m in admitted if KNOWN_PYTHONS.index(m) <= default]
    return below[-1] if below else admitted[0]


class _Unconvertible(ValueError):
    """A Poetry `python = ...` restriction init cannot write as a PEP 508 marker."""


def _poetry_requirement(name: str, spec: Any) -> str | None:
    """A PEP 508 string for one [tool.poetry.dependencies] entry; None for path, git and url sources;
    _Unconvertible for a `python` restriction that is no marker."""
    extras: list[str] = []
    markers = ""
    if isinstance(spec, dict):
        if any(k in spec for k in _SOURCE_KEYS):
            return None
        extras = [str(e) for e in spec.get("extras", [])]
        found = [str(spec["markers"])] if spec.get("markers") else []
        python = _python_marker(spec["python"]) if spec.get("python") is not None else ""
        found += [python] if python else []
        if found:
            markers = " ; " + (found[0] if len(found) == 1 else " and ".join(f"({m})" for m in found))
        spec = spec.get("version", "*")
    if not isinstance(spec, str):
        return None
    version = _poetry_version(spec.strip())
    extra = f"[{','.join(extras)}]" if extras else ""
    return f"{name}{extra}{version}{markers}"


def _python_marker(spec: Any) -> str:
    """Poetry's `python = ">=3.11"` (PEP 440, ^ or ~; no `||`) as a PEP 508 marker; "" for any Python."""
    if not isinstance(spec, str) or "|" in spec:
        raise _Unconvertible(str(spec))
    pep440 = _poetry_version(spec.strip()) if spec.strip() else ""
    if not pep440:
        return ""
    try:
        allowed = [Specifier(part) for part in pep440.split(",")]
    except InvalidSpecifier as exc:
        raise _Unconvertible(spec) from exc
    terms = []
    for one in allowed:
        variable = "python_version" if len(one.version.removesuffix(".*").split(".")) <= 2 else "python_full_version"
        terms.append(f'{variable} {one.operator} "{one.version}"')
    return " and ".join(terms)


def _poetry_version(spec: str) -> str:
    """A Poetry version constraint as PEP 440 (`^1.2` is >=1.2,<2.0; `~1.2` is >=1.2,<1.3; `1.2` is ==1.2)."""
    if spec in ("", "*"):
        return ""
    return ",".join(_poetry_part(p.strip()) for p in spec.split(","))


def _poetry_part(part: str) -> str:
    if part.startswith("^") or (part.startswith("~") and not part.startswith("~=")):
        return _poetry_range(part, caret=part.startswith("^"))
    if part[:1].isdigit():  # "" (from "1,") is no part: left for the caller to refuse
        return f"=={part}"
    return part


def _poetry_range(part: str, *, caret: bool) -> str:
    """`^X.Y.Z` allows what keeps its first non-zero number; `~X.Y.Z` what keeps X.Y (X when only X)."""
    numbers = [int(n) for n in re.findall(r"[0-9]+", part)] or [0]
    low = ".".join(str(n) for n in numbers)
    if caret:
        first = next((i for i, n in enumerate(numbers) if n != 0), len(numbers) - 1)
    else:
        first = 0 if len(numbers) == 1 else 1
    upper = numbers[:first + 1]
    upper[-1] += 1
    return f">={low},<{'.'.join(str(n) for n in upper)}"


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    """data[key] when it is a TOML table, else an empty one (a hand-written file may say anything)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _from_pyproject(root: Path, found: Found, *, named: bool) -> None:
    path = root / "pyproject.toml"
    if not _usable(root, "pyproject.toml", found):
        return
    data = _read_toml(path, found)
    if not data:
        return
    found.sources.append("pyproject.toml")
    project = _table(data, "project")
    poetry = _table(_table(data, "tool"), "poetry")
    name = project.get("name") or poetry.get("name")
    if isinstance(name, str) and not named:
        found.project = project_name(name)
    poetry_deps = _table(poetry, "dependencies")
    _python_from_pyproject(project, poetry_deps, found)
    deps = project.get("dependencies")
    if isinstance(deps, list):
        own = canonicalize_name(name) if isinstance(name, str) else None
        for dep in _without_itself([str(d) for d in deps], own, _table(project, "optional-dependencies"), found):
            _add_requirement(found, dep, PYPROJECT)
    optional = _from_poetry_dependencies(poetry_deps, found)
    _note_optional(project, poetry, optional, found)
    if isinstance(data.get("build-system"), dict):  # only a package that says how it is built is installed
        found.local_packages.append(".")


def _without_itself(deps: list[str], own: str | None, extras: dict[str, Any], found: Found,
                    seen: frozenset[str] = frozenset()) -> list[str]:
    """deps, a requirement on the project itself (`name[extra]`: its own extras) replaced by those extras'
    requirements: on an index, that name could be anyone's package."""
    out = []
    for dep in deps:
        try:
            req = Requirement(dep)
        except InvalidRequirement:
            out.append(dep)  # said by _add_requirement
            continue
        if own is None or canonicalize_name(req.name) != own:
            out.append(dep)
            continue
        found.notes.append(f"pyproject.toml: {_shown(dep)} names the project itself: the requirements of its extras "
                           f"({', '.join(sorted(req.extras)) or 'none'}) are listed instead")
        for extra in sorted(req.extras - seen):
            listed = extras.get(extra)
            if isinstance(listed, list):
                out += _without_itself([str(d) for d in listed], own, extras, found, seen | {extra})
    return out


def _python_from_pyproject(project: dict[str, Any], poetry_deps: dict[str, Any], found: Found) -> None:
    """The Python version from `requires-python` (or Poetry's `python` dependency), unless already chosen."""
    requires = project.get("requires-python")
    if not isinstance(requires, str):
        requires = poetry_deps.get("python")
    if not isinstance(requires, str) or found.python_from is not None:
        return
    minor = _chosen_minor(requires)
    if minor is not None:
        found.python, found.python_from = minor, f"pyproject.toml requires-python {requires}"


def _from_poetry_dependencies(poetry_deps: dict[str, Any], found: Found) -> list[str]:
    """Each Poetry dependency as requirements (a list of constraints as one each, with its markers: settle()
    keeps the one for the image's Python), or a note; the names of the optional ones, left out."""
    optional = []
    for dep_name, spec in sorted(poetry_deps.items()):
        if dep_name.lower() == "python":
            continue
        specs = spec if isinstance(spec, list) else [spec]
        kept = [one for one in specs if not (isinstance(one, dict) and one.get("optional") is True)]
        if not kept:
            optional.append(dep_name)
            continue
        try:
            reqs = [_poetry_requirement(dep_name, one) for one in kept]
        except _Unconvertible as exc:
            found.notes.append(f"pyproject.toml: dependency '{_shown(dep_name)}' is for python = "
                               f"'{_shown(str(exc))}', which init cannot write as a PEP 508 marker; add it by hand")
            continue
        if None in reqs:
            found.notes.append(f"pyproject.toml: dependency '{_shown(dep_name)}' " + _why_not_translated(kept))
            continue
        for req in reqs:
            _add_requirement(found, str(req), PYPROJECT)
    return optional


def _why_not_translated(specs: list[Any]) -> str:
    """What a Poetry dependency init cannot translate is: from a path, git or URL, or something else."""
    if any(isinstance(one, dict) and any(k in one for k in _SOURCE_KEYS) for one in specs):
        return "comes from a path, git or URL; add it by hand (local_packages: for a directory in the project)"
    return "is not a version constraint init can read; add it by hand"


_SOURCE_KEYS = ("path", "git", "url", "file")


def _note_optional(project: dict[str, Any], poetry: dict[str, Any], optional: list[str], found: Found) -> None:
    """One note naming the extras, optional Poetry dependencies and Poetry groups init leaves out (an image
    needs some of them, or none)."""
    extras = sorted(set(_table(project, "optional-dependencies")) | set(_table(poetry, "extras")))
    groups = sorted(set(_table(poetry, "group")) | ({"dev"} if "dev-dependencies" in poetry else set()))
    parts = []
    if extras:
        parts.append(f"optional dependencies (extras: {', '.join(_shown(e) for e in extras)})")
    if optional:
        parts.append(f"the optional Poetry dependenc{'ies' if len(optional) > 1 else 'y'} "
                     + ", ".join(f"'{_shown(o)}'" for o in optional))
    if groups:
        parts.append(f"the Poetry group{'s' if len(groups) > 1 else ''} "
                     + ", ".join(f"'{_shown(g)}'" for g in groups))
    if parts:
        found.notes.append(f"pyproject.toml: {' and '.join(parts)} "
                           f"{'were' if len(extras) + len(groups) + len(optional) > 1 else 'was'} left out: add "
                           "what an image needs to its requirements")


def _shown(text: str) -> str:
    """text for a note: any URL credentials as '***', control characters escaped."""
    return (masked_credentials(text) or text).encode("unicode_escape").decode("ascii")


def _add_requirement(found: Found, text: str, origin: str) -> None:
    """Add text when dockwright.yaml accepts it as written (validate runs the same check); else a note."""
    try:
        Requirement(text)
    except InvalidRequirement:
        found.notes.append(f"{origin}: '{_shown(text)}' is not a PEP 508 requirement; add it by hand")
        return
    if masked_credentials(text) is not None:
        found.notes.append(f"{origin}: '{_shown(text)}' carries credentials and was left out; install it "
                           "from a mirror that needs no token, or through an authenticating proxy")
        return
    if requirement_problem(text) is not None:
        found.notes.append(f"{origin}: '{_shown(text)}' was left out; add it by hand")
        return
    found.wanted.append(Wanted(text, origin))


def _from_requirements_txt(root: Path, rel: str, found: Found, chain: tuple[str, ...] = ()) -> None:
    """Name the file (rel, from the root) in requirements_files when compile reads it and every file its -r
    lines reach as written; else take its lines apart (a -r line's file in turn)."""
    found.used.add(rel)
    lines = _lines(root, rel, found)
    if lines is None:
        return
    reached: set[str] = set()
    named = _as_written(root, rel, lines, (*chain, rel), reached)
    if named is not None:
        found.requirements_files.append(rel)
        found.wanted += [Wanted(text, where, inline=False) for text, where in named]
        found.used.update(reached)
        return
    hashes = False
    for _, logical in _logical_lines(lines):
        text = _COMMENT.sub("", logical).strip()
        if text:
            hashes = _take_apart(text, root, rel, found, (*chain, rel)) or hashes
    if hashes:
        found.notes.append(f"{rel}: its --hash options were left out: `dockwright lock` pins hashes")


def _lines(root: Path, rel: str, found: Found | None) -> list[str] | None:
    """The lines of a requirements file; None, with a note when found is given, when it cannot be read."""
    try:
        return read_inside(root / rel, root).decode("utf-8-sig").splitlines()  # a BOM, as pip and compile take it
    except (OSError, UnicodeDecodeError) as exc:
        if found is not None:
            found.notes.append(f"{_shown(rel)} was not read: {exc}")
        return None


def _as_written(root: Path, rel: str, lines: list[str], chain: tuple[str, ...],
                reached: set[str]) -> list[tuple[str, str]] | None:
    """The requirements (each with its file) of a file compile reads as written, with the files its -r lines
    reach (added to reached): no option but -r, no continued line, nothing validate refuses (a credential, a
    local path), no -r line out of the project, to a file that is not there, or round a loop; else None."""
    reached.add(rel)
    if any(line.rstrip().endswith("\\") for line in lines) or len(chain) > 10:
        return None
    out: list[tuple[str, str]] = []
    for line in lines:
        text = _COMMENT.sub("", line).strip()
        if not text:
            continue
        if not text.startswith("-"):
            if requirement_problem(text) is not None:
                return None
            out.append((text, rel))
            continue
        child = _r_target(text, rel)
        if child is None or child in chain or not _is_file(root, child):
            return None
        child_lines = _lines(root, child, None)
        more = _as_written(root, child, child_lines, (*chain, child), reached) if child_lines is not None else None
        if more is None:
            return None
        out += more
    return out


def _r_target(text: str, rel: str) -> str | None:
    """The file (from the root) a `-r FILE` line names, as compile reads it; None for any other option, or a
    file outside the project."""
    option, _, value = text.replace("=", " ", 1).partition(" ")
    value = value.strip()
    if option.startswith("-r") and len(option) > 2 and not value:
        option, value = "-r", option[2:]
    if option not in ("-r", "--requirement") or not value:
        return None
    child = posixpath.normpath(posixpath.join(posixpath.dirname(rel), value))
    return None if child == ".." or child.startswith("../") or value.startswith("/") else child


def _is_file(root: Path, rel: str) -> bool:
    """rel is a regular file whose real location is inside the project (as compile reads a -r line's file)."""
    try:
        inside(root / rel, root)
        return (root / rel).is_file()
    except (OSError, ValueError):
        return False


def _take_apart(text: str, root: Path, rel: str, found: Found, chain: tuple[str, ...]) -> bool:
    """One logical line of a requirements file that cannot be named as it is: a requirement (its --hash
    options dropped: True), a -r line (its file read in turn), `-e .` (the project as a local package), an
    index option, or a note saying what to do instead."""
    path = root / rel
    if not text.startswith("-"):
        return _requirement_line(text, path, found)
    option, _, value = text.replace("=", " ", 1).partition(" ")
    value = value.strip()
    if option.startswith(("-r", "--requirement")):
        _r_line(text, root, rel, found, chain)
    elif option in ("-e", "--editable") and value in (".", "./"):
        if not any((path.parent / name).is_file() for name in PACKAGE_FILES):
            found.notes.append(f"{path.name}: '{text}' was left out: the directory has no pyproject.toml, "
                               "setup.py or setup.cfg")
        elif "." not in found.local_packages:
            found.local_packages.append(".")
    elif option in _INDEX_OPTIONS and value:
        _index_option(option, value, path, found)
    elif option == "--trusted-host" and _HOST.fullmatch(value):
        if value not in found.installer_args:
            found.installer_args += ["--trusted-host", value]
    else:
        found.notes.append(f"{path.name}: '{_shown(text)}' was left out; add what it means by hand")
    return False


def _r_line(text: str, root: Path, rel: str, found: Found, chain: tuple[str, ...]) -> None:
    """`-r FILE` in a file taken apart: FILE is named or taken apart in turn (once, as pip reads it)."""
    child = _r_target(text, rel)
    if child is None or not _is_file(root, child):
        found.notes.append(f"{_shown(rel)}: '{_shown(text)}' was left out: it names no requirements file in the "
                           "project; add what it means by hand")
    elif child in chain:
        found.notes.append(f"{_shown(rel)}: '{_shown(text)}' was left out: it leads back to a file that names it "
                           "(pip refuses that loop)")
    elif child not in found.used:
        _from_requirements_txt(root, child, found, chain)


_INDEX_OPTIONS = {"-i": "index_url", "--index-url": "index_url", "--extra-index-url": "extra_index_urls"}
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?")
_OPTION_AFTER = re.compile(r"\s-")  # as compile reads a line: an option starts at a ' -'


def _requirement_line(text: str, path: Path, found: Found) -> bool:
    """A requirement, with any options after it: --hash ones are dropped (True), others noted."""
    text = " ".join(text.split())  # a continued line keeps no run of spaces, as compile reads it
    match = _OPTION_AFTER.search(text)
    if match is None:
        _add_requirement(found, text, path.name)
        return False
    requirement, options = text[:match.start()].strip(), text[match.start():].split()
    words = [o for o in options if o.startswith("-")]
    if not all(w == "--hash" or w.startswith("--hash=") for w in words):
        found.notes.append(f"{path.name}: '{_shown(text)}' was left out: an option on a requirement line "
                           "is not supported; add what it means by hand")
        return False
    _add_requirement(found, requirement, path.name)
    return True


def _index_option(option: str, value: str, path: Path, found: Found) -> None:
    """`--index-url URL` becomes index_url, `--extra-index-url URL` an extra_index_urls entry; a URL with
    credentials or one validate refuses is a note (credentials as '***')."""
    key = _INDEX_OPTIONS[option]
    shown = f"{option} {_shown(value)}"
    if masked_credentials(value) is not None:
        found.notes.append(f"{path.name}: '{shown}' carries credentials and was left out: set {key} on the "
                           "environment to a mirror that needs no token, or to an authenticating proxy")
    elif index_url_problem(value) is not None:
        found.notes.append(f"{path.name}: '{shown}' was left out: {key} takes an http(s) URL")
    elif key == "extra_index_urls":
        if value not in found.extra_index_urls:
            found.extra_index_urls.append(value)
    elif found.index_url not in (None, value):
        found.notes.append(f"{path.name}: '{shown}' was left out: index_url is already {found.index_url}")
    else:
        found.index_url = value


def _note_renamed(found: Found, project: str | None) -> None:
    if project is not None and found.project != project:
        found.notes.append(f"--project {project!r} is written as {found.project!r}: a project name is lowercase "
                           "letters, digits and '-'")


def detect(root: Path, *, project: str | None = None, python: str | None = None) -> Found:
    """Everything init proposes for the project at root."""
    found = Found(project=project_name(project or root.resolve().name), python=python or DEFAULT_PYTHON,
                  python_from="--python" if python else None)
    _note_renamed(found, project)
    if python is None:
        _from_version_file(root, found)
    _from_pyproject(root, found, named=project is not None)
    if _usable(root, "requirements.txt", found):
        found.sources.append("requirements.txt")
        _from_requirements_txt(root, "requirements.txt", found)
    others = sorted(p.name for p in root.glob("requirements*.txt")
                    if p.name not in found.used and p.name != "requirements.txt" and _usable(root, p.name, found))
    for other in others:
        found.notes.append(f"{_shown(other)} is not used: add it to an environment that needs it, e.g. one that "
                           "extends base (requirements_files: [" + _shown(other) + "])")
    _from_dockerfile(root, found)
    settle(found)
    if "." in found.local_packages:
        found.notes.append("local_packages: [\".\"] copies the whole project into base's image, so a change to any file "
                           "(generated/ too) rebuilds it and every image on it: a .dockerignore that leaves out what "
                           "building the package does not need (.git, data, notebooks) keeps that small")
    return found


def _from_version_file(root: Path, found: Found) -> None:
    """The Python version of .python-version's first version, when it is a CPython 3 minor dockwright knows;
    else a note saying it was not used."""
    version_file = root / ".python-version"
    if not version_file.exists() and not version_file.is_symlink():
        return
    if version_file.is_symlink() and not _is_file(root, ".python-version"):
        _usable(root, ".python-version", found)  # the note; a FIFO or a folder there is read_regular's note
        return
    try:  # a FIFO or a folder there is a note
        text = read_inside(version_file, root).decode("utf-8-sig", errors="replace")
    except OSError as exc:
        found.notes.append(f"{version_file.name} was not read: {exc.strerror}")
        return
    words = [line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not words:
        return
    match = _VERSION_FILE.fullmatch(words[0])
    if match and f"3.{match.group('minor')}" in KNOWN_PYTHONS:
        found.python, found.python_from = f"3.{match.group('minor')}", ".python-version"
    else:
        found.notes.append(f".python-version: '{_shown(words[0])}' was not used: it is not a CPython version "
                           f"dockwright targets (the official python images, {KNOWN_PYTHONS[0]} to "
                           f"{KNOWN_PYTHONS[-1]}); set the one the image needs with --python")


def image_python(found: Found) -> str:
    """The Python version base's image will have, as render writes it."""
    from .lock import python_of

    if found.dockerfile is not None and found.python_from != "--python" and found.dockerfile_from is not None:
        return python_of(found.dockerfile_from) or found.python
    return found.python


def settle(found: Found) -> None:
    """found.requirements from found.wanted, each package once (an environment lists a package once): a
    requirements file's entry wins over pyproject.toml's (its pin is the more specific), the first file's over
    a later one's, and of a package pyproject.toml lists several times with different markers, the one for the
    image's Python; each entry left out is named in a note."""
    files = _first_in_files(found)
    groups: dict[str, list[Wanted]] = {}
    for want in found.wanted:
        if want.origin == PYPROJECT and want not in groups.setdefault(want.name, []):
            groups[want.name].append(want)
    kept = {id(want) for want in files.values()}
    for name, group in groups.items():
        if name not in files:
            kept.update(id(w) for w in _one_of(group, image_python(found), found))
            continue
        left = [f"'{_shown(w.text)}'" for w in group if w.text != files[name].text]
        if left:
            found.notes.append(f"pyproject.toml: {', '.join(left)} {'were' if len(left) > 1 else 'was'} left out: "
                               f"{_shown(files[name].origin)} pins {name} as '{_shown(files[name].text)}', the more "
                               "specific (an environment lists a package once)")
    found.requirements = [w.text for w in found.wanted if w.inline and id(w) in kept]


def _first_in_files(found: Found) -> dict[str, Wanted]:
    """Each package's entry from the requirements files: a named file's (it cannot be left out of its file),
    else the first taken-apart file's; a later different entry is named in a note."""
    files: dict[str, Wanted] = {}
    for want in sorted((w for w in found.wanted if w.origin != PYPROJECT), key=lambda w: w.inline):
        first = files.setdefault(want.name, want)
        if first is not want and first.text != want.text and want.inline:
            found.notes.append(f"{_shown(want.origin)}: '{_shown(want.text)}' was left out: {_shown(first.origin)} "
                               f"lists {want.name} as '{_shown(first.text)}' (an environment lists a package once)")
    return files


_LINUX = {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "platform_release": "", "platform_version": "", "implementation_name": "cpython",
          "platform_python_implementation": "CPython", "extra": ""}


def _one_of(group: list[Wanted], python: str, found: Found) -> list[Wanted]:
    """Of a package pyproject.toml lists several times (different markers, or in [project] and Poetry's table),
    the first requirement whose markers hold for CPython `python` on Linux x86-64, with a note; none, with a
    note, when none does."""
    if len(group) == 1:
        return group
    env = {**_LINUX, "python_version": python, "python_full_version": f"{python}.0",
           "implementation_version": f"{python}.0"}
    holding = [w for w in group if _holds(w, env)]
    texts = ", ".join(f"'{_shown(w.text)}'" for w in group)
    where = f"Python {python} on Linux x86-64"
    if holding:
        which = "the one" if len(holding) == 1 else "the first of those"
        found.notes.append(f"pyproject.toml: {group[0].name} is listed {len(group)} times ({texts}); an environment "
                           f"lists a package once, so init kept '{_shown(holding[0].text)}', {which} for {where}")
        return holding[:1]
    found.notes.append(f"pyproject.toml: {group[0].name} is listed {len(group)} times ({texts}) and none of them "
                       f"is for {where}, so it was left out: an environment lists a package once; add the one the "
                       "image needs by hand")
    return []


def _holds(want: Wanted, env: dict[str, str]) -> bool:
    marker = Requirement(want.text).marker
    try:
        return marker is None or marker.evaluate(env)
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return False


def _from_dockerfile(root: Path, found: Found) -> None:
    if _usable(root, "Dockerfile", found):
        found.dockerfile = "Dockerfile"
        found.sources.append("Dockerfile")
        found.dockerfile_from = _python_parent(root / "Dockerfile")


_ARG = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<value>[A-Za-z0-9._:/@-]+))?")
_REF = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def _python_parent(path: Path) -> str | None:
    """The image the Dockerfile's last stage starts from, when it is an official python image (so its Python
    version is known); None when it is another, unreadable, or built from an ARG without a default. A
    `${NAME}` or `$NAME` in a FROM is the default of an `ARG NAME=value` before the first FROM. The
    instructions are read as compile reads a custom parent's (plan._instructions: continuations, comments,
    heredocs)."""
    from .lock import python_of
    from .plan import _instructions

    try:
        text = read_inside(path, path.parent).decode("utf-8", errors="replace")
    except OSError:
        return None
    image = None
    defaults: dict[str, str] = {}
    stages = 0
    for word, rest in _instructions(text):
        if word == "ARG" and not stages:
            arg = _ARG.fullmatch(rest.strip())
            if arg:
                defaults[arg.group("name")] = arg.group("value") or "$"  # no default: not known
            else:  # an ARG this reader does not follow (quotes, several names): each name it may set is not known
                defaults.update(dict.fromkeys(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rest), "$"))
        elif word == "FROM":
            stages += 1
            expanded = _REF.sub(lambda m: defaults.get(m.group("braced") or m.group("bare"), "$"), rest)
            args = [a for a in expanded.split() if not a.startswith("--")]
            image = args[0] if args and "$" not in args[0] else None  # a variable not known: not known
    return image if python_of(image) else None


def _q(text: str) -> str:
    """A YAML double-quoted scalar, by PyYAML's emitter: it reads back as exactly text, on its line."""
    return scalar(text)


def refusal(diagnostics: list[Diagnostic], target: Path) -> str:
    """The one-line error when what init made does not compile (nothing is written): the first problem, with
    its place (a line of the file init would have written, or of a file the project has)."""
    first = diagnostics[0]
    where = ""
    if first.location is not None:
        loc = first.location
        where = (f"line {loc.line} of it: " if loc.file == target.absolute()
                 else f"{loc.display_path()}:{loc.line}: ")
    more = f"; and {len(diagnostics) - 1} more" if len(diagnostics) > 1 else ""
    hint = f" ({first.hint}{more})" if first.hint else f" ({more[2:]})" if more else ""
    return (f"{shown_path(target)} was not written: what init made from this project does not compile: {where}"
            f"{first.message}{hint}")


def _dockerfile_python(found: Found) -> str:
    """Beside `dockerfile:`, `python:` states the Python version its image has (`dockwright lock` needs it):
    --python, else its FROM when that is an official python image, else the project's own version (to check),
    else a commented line."""
    from .lock import python_of

    if found.python_from == "--python":
        return f"    python: {_q(found.python)}  # the Python version your Dockerfile's image has"
    if found.dockerfile_from is not None:
        return f"    python: {_q(python_of(found.dockerfile_from) or '')}  # from its FROM {found.dockerfile_from}"
    if found.python_from is not None:
        return (f"    python: {_q(found.python)}  # from {_shown(found.python_from)}: check that your Dockerfile's "
                "image has this Python")
    return (f"    # python: {_q(found.python)}  # the Python version your Dockerfile's image has: "
            "`dockwright lock` needs it")


def _index_lines(found: Found) -> list[str]:
    """index_url, extra_index_urls and installer_args, from the requirements file's options."""
    lines = [f"    index_url: {_q(found.index_url)}"] if found.index_url is not None else []
    if found.extra_index_urls:
        lines.append("    extra_index_urls: [" + ", ".join(_q(u) for u in found.extra_index_urls) + "]")
    if found.installer_args:
        lines.append("    installer_args: [" + ", ".join(_q(a) for a in found.installer_args) + "]")
    return lines


def render(found: Found) -> str:
    """The dockwright.yaml text for what was found; deterministic."""
    lines = ["# A starting dockwright.yaml, written by `dockwright init`"
             + (f" from {', '.join(found.sources)}." if found.sources else "."),
             "# Check it with `dockwright validate`, then `dockwright compile` writes the Dockerfiles.",
             "version: 1",
             f"project: {scalar(found.project, plain=True)}",
             "",
             "environments:",
             "  base:"]
    if found.dockerfile is not None:
        lines.append(f"    dockerfile: {_q(found.dockerfile)}          # your Dockerfile, built first as the parent")
        lines.append(_dockerfile_python(found))
    else:
        why = f"  # from {_shown(found.python_from)}" if found.python_from and found.python_from != "--python" else ""
        lines.append(f"    python: {_q(found.python)}{why}")
    lines += _index_lines(found)
    if found.requirements_files:
        lines.append("    requirements_files: [" + ", ".join(_q(f) for f in found.requirements_files) + "]")
    if found.requirements:
        lines.append("    requirements:")
        lines.extend(f"      - {_q(r)}" for r in found.requirements)
    if found.local_packages:
        lines.append("    local_packages: [" + ", ".join(_q(p) for p in found.local_packages)
                     + "]   # your package, installed after the requirements")
    lines += ["    workdir: /app",
              "",
              "runner: {environment: base}",
              "",
              "# pipelines:",
              "#   training:",
              "#     environment: base",
              "#     steps:",
              "#       load: {}",
              "#       train: {after: [load]}",
              ""]
    return "\n".join(lines)
