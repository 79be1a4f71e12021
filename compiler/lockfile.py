"""dockwright.lock: the records, a deterministic writer and a validating reader with located errors. No I/O
besides reading the one file and keeping what it parsed in the user's cache (see _cached); no network.

The file is TOML in one fixed shape that `render` writes and `parse` reads back; anything else (a newer
format, a hand edit, a value of the wrong kind) is a located error that says to run `dockwright lock`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import marshal
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import reads, record
from .errors import ConfigError, Diagnostic, Location, UsageError, inside, read_regular, shown_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LOCK_FILE = "dockwright.lock"
FORMAT = 1
HEADER = "# Written by `dockwright lock`: every Python package (with hashes) and parent image (by digest).\n" \
         "# Do not edit by hand; run `dockwright lock` to change it.\n"
PLATFORMS = ("linux/amd64", "linux/arm64")
_RUN = "run `dockwright lock` to write it again"

_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_NAME = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")  # a normalised distribution name
_VERSION = re.compile(r"[A-Za-z0-9.+!_-]{1,100}")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!~-]{0,250}")
_PYTHON = re.compile(r"3\.[0-9]{1,2}")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class File:
    name: str  # the wheel or sdist file name (never a URL: URLs may name a machine or carry credentials)
    hash: str  # sha256:<hex>
    size: int | None  # bytes, when the index tells
    platforms: tuple[str, ...] = ()  # empty: every platform of its package


@dataclass(frozen=True)
class Package:
    name: str  # normalised
    version: str
    via: tuple[str, ...]  # the direct requirements (as written in the YAML) that pull it in, sorted
    files: tuple[File, ...]
    platforms: tuple[str, ...] = ()  # empty: every platform of the image

    def on(self, platform: str, image_platforms: tuple[str, ...]) -> bool:
        return platform in (self.platforms or image_platforms)

    @functools.cached_property
    def hash_options(self) -> str:
        """` --hash=sha256:...` for each distinct file hash, sorted (the end of its requirements.txt line)."""
        return "".join(f" --hash={h}" for h in sorted({f.hash for f in self.files}))


def _order(p: Package) -> tuple[str, tuple[str, ...], str]:
    return p.name, p.platforms, p.version


@dataclass(frozen=True)
class Parent:
    ref: str  # as written in the YAML (`python:3.11-slim`): the lock never names a mirror
    digest: str  # the manifest list / index, or the single manifest; "" when not pinned (lock --skip-parents)
    platforms: tuple[tuple[str, str], ...]  # (platform, manifest digest), sorted; () when not pinned


@dataclass(frozen=True)
class LockedImage:
    name: str
    python: str | None
    platforms: tuple[str, ...]
    inputs: str  # sha256 of everything that affects resolution: compare offline
    parent: Parent | None
    packages: tuple[Package, ...]

    def pins(self, platform: str) -> dict[str, str]:
        return {p.name: p.version for p in self.packages if p.on(platform, self.platforms)}

    @functools.cached_property
    def ordered(self) -> tuple[Package, ...]:
        """The packages in the file's order: by name, platforms, version."""
        return tuple(sorted(self.packages, key=_order))

    @functools.cached_property
    def installed(self) -> frozenset[tuple[str, str, tuple[str, ...]]]:
        """(name, version, platforms) of each package: what an image layered on this one has already."""
        return frozenset((p.name, p.version, p.platforms or self.platforms) for p in self.packages)


@dataclass(frozen=True)
class Lock:
    images: Mapping[str, LockedImage]


def digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- writing -------------------------------------------------------------------------------------


def _str(value: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also refuses a raw DEL.
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'  # what json.dumps writes for it, without its cost (locks hold many strings)
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _str(key)


def _strs(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_str(v) for v in values) + "]"


def _file(f: File) -> str:
    parts = [f"name = {_str(f.name)}", f"hash = {_str(f.hash)}"]
    if f.size is not None:
        parts.append(f"size = {f.size}")
    if f.platforms:
        parts.append(f"platforms = {_strs(f.platforms)}")
    return "{ " + ", ".join(parts) + " }"


def render(lock: Lock, *, checksum: bool = True) -> str:
    """The file's text: sorted, one package block and one file per line, no timestamps or paths; after the
    version, the sha256 of everything below it, so that an edit that keeps the shape is found too.
    checksum=False: as dockwright wrote it before it wrote one (parse reads such a lock as it is)."""
    body = _render_images(lock)
    line = f"checksum = {_str(_checksum(body))}\n" if checksum else ""
    return f"{HEADER}version = {FORMAT}\n{line}{body}"


def _checksum(body: str) -> str:
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def _render_images(lock: Lock) -> str:
    out = []
    bodies: dict[int, str] = {}  # a package's lines, by package (a layered image's entry repeats its parent's)
    for name in sorted(lock.images):
        img = lock.images[name]
        head = f"images.{_key(name)}"
        out.append(f"\n[{head}]\n")
        if img.python is not None:
            out.append(f"python = {_str(img.python)}\n")
        out.append(f"platforms = {_strs(img.platforms)}\n")
        out.append(f"inputs = {_str(img.inputs)}\n")
        if img.parent is not None:
            out.append(f"\n[{head}.parent]\nref = {_str(img.parent.ref)}\n")
            if img.parent.digest:  # else: not pinned (lock --skip-parents)
                out.append(f"digest = {_str(img.parent.digest)}\n")
                out.append(f"\n[{head}.parent.platforms]\n")
                out.extend(f"{_str(p)} = {_str(d)}\n" for p, d in img.parent.platforms)
        for pkg in img.ordered:
            out.append(f"\n[[{head}.packages]]\n")
            body = bodies.get(id(pkg))
            if body is None:
                body = bodies[id(pkg)] = _package_body(pkg)
            out.append(body)
    return "".join(out)


def _package_body(pkg: Package) -> str:
    """A package block's lines after its header."""
    out = [f"name = {_str(pkg.name)}\nversion = {_str(pkg.version)}\n"]
    if pkg.platforms:
        out.append(f"platforms = {_strs(pkg.platforms)}\n")
    out.append(f"via = {_strs(pkg.via)}\n")
    out.append("files = [\n" + "".join(f"    {_file(f)},\n" for f in pkg.files) + "]\n")
    return "".join(out)


# -- reading -------------------------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, message: str, needle: str | None = None, line: int | None = None, col: int = 1) -> None:
        super().__init__(message)
        self.message, self.needle, self.line, self.col = message, needle, line, col


def too_deep(text: str, limit: int = 100) -> tuple[int, int]:
    """Where brackets first nest `limit` deep (1-based line and column), or (1, 1): locates a RecursionError."""
    depth, line, start = 0, 1, 0
    for i, ch in enumerate(text):
        if ch == "\n":
            line, start = line + 1, i + 1
        elif ch in "[{":
            depth += 1
            if depth >= limit:
                return line, i - start + 1
        elif ch in "]}":
            depth -= 1
    return 1, 1


def _locate(path: Path, text: str, needle: str | None, line: int | None, col: int) -> Location:
    lines = text.split("\n")  # TOML's only line break
    if line is None:
        line, col = 1, 1
        if needle:
            for n, candidate in enumerate(lines, 1):
                at = candidate.find(needle)
                if at >= 0:
                    line, col = n, at + 1
                    break
    line = min(max(line, 1), len(lines))
    return Location(path, line, col, lines[line - 1])


def error(path: Path, text: str, message: str, *, needle: str | None = None, line: int | None = None,
          col: int = 1, hint: str = _RUN) -> ConfigError:
    return ConfigError([Diagnostic(_locate(path, text, needle, line, col), message, hint)])


def _table(value: Any, what: str, needle: str | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is not a table", needle)
    return value


def _text(table: dict[str, Any], key: str, pattern: re.Pattern[str] | None, what: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        shown = json.dumps(value) if isinstance(value, str) else None
        raise _Bad(f"{what}: '{key}' is missing or not valid", f"{key} = {shown}" if shown else None)
    return value


def _platforms(value: Any, what: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if value is None and allow_empty:
        return ()
    if (not isinstance(value, list) or not all(isinstance(p, str) and p in PLATFORMS for p in value)
            or value != sorted(set(value)) or (not value and not allow_empty)):
        raise _Bad(f"{what}: 'platforms' must be a sorted list of {', '.join(PLATFORMS)}")
    return tuple(value)


def _check_keys(table: dict[str, Any], allowed: set[str], what: str) -> None:
    """what: the table ("image 'base'"), or "" for the file's top level (the error says the file's name)."""
    for key in sorted(table):
        if key not in allowed:
            raise _Bad(f"{what + ': ' if what else ''}unknown key '{key}'", f"{key} =")


def _image(name: str, data: Any, seen: dict[int, Package]) -> LockedImage:
    """seen: the package read from each package table checked before (by id: the fast reader gives a repeated
    block's table again), so that each is checked once."""
    what = f"image '{name}'"
    t = _table(data, what)
    _check_keys(t, {"python", "platforms", "inputs", "parent", "packages"}, what)
    python = _text(t, "python", _PYTHON, what) if "python" in t else None
    platforms = _platforms(t.get("platforms"), what)
    inputs = _text(t, "inputs", _HASH, what)
    parent = _parent(t["parent"], what) if "parent" in t else None
    raw = t.get("packages", [])
    if not isinstance(raw, list):
        raise _Bad(f"{what}: 'packages' is not a list of tables")
    return LockedImage(name=name, python=python, platforms=platforms, inputs=inputs, parent=parent,
                       packages=tuple(_seen(seen, item, what) for item in raw))


def _seen(seen: dict[int, Package], item: Any, what: str) -> Package:
    found = seen.get(id(item))
    if found is None:
        found = seen[id(item)] = _package(item, what)
    return found


def _parent(data: Any, what: str) -> Parent:
    pt = _table(data, f"{what}: parent")
    _check_keys(pt, {"ref", "digest", "platforms"}, f"{what}: parent")
    pinned = "digest" in pt or "platforms" in pt  # else: not pinned (lock --skip-parents)
    per = _table(pt.get("platforms"), f"{what}: parent platforms") if pinned else {}
    for plat, dig in per.items():
        if plat not in PLATFORMS or not isinstance(dig, str) or not _HASH.fullmatch(dig):
            raise _Bad(f"{what}: parent platform '{plat}' has no valid digest", json.dumps(plat))
    return Parent(ref=_text(pt, "ref", None, f"{what}: parent"),
                  digest=_text(pt, "digest", _HASH, f"{what}: parent") if pinned else "",
                  platforms=tuple(sorted(per.items())))


def _package(data: Any, what: str) -> Package:
    p = _table(data, f"{what}: a package")
    pname = _text(p, "name", _NAME, f"{what}: a package")
    pwhat = f"{what}: package '{pname}'"
    at = f"name = {json.dumps(pname)}"
    _check_keys(p, {"name", "version", "platforms", "via", "files"}, pwhat)
    via = p.get("via")
    if not isinstance(via, list) or not all(isinstance(v, str) for v in via):
        raise _Bad(f"{pwhat}: 'via' must be a list of requirements", at)
    rawf = p.get("files")
    if not isinstance(rawf, list) or not rawf:
        raise _Bad(f"{pwhat}: 'files' must list at least one file", at)
    files = tuple(_file_entry(f, pwhat, at) for f in rawf)
    return Package(name=pname, version=_text(p, "version", _VERSION, pwhat), via=tuple(via), files=files,
                   platforms=_platforms(p.get("platforms"), pwhat, allow_empty=True))


def _file_entry(data: Any, pwhat: str, at: str) -> File:
    ft = _table(data, f"{pwhat}: a file", at)
    _check_keys(ft, {"name", "hash", "size", "platforms"}, pwhat)
    size = ft.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _Bad(f"{pwhat}: a file's 'size' is not a number of bytes", f"size = {size}")
    return File(name=_text(ft, "name", _FILE, f"{pwhat}: a file"), hash=_text(ft, "hash", _HASH, f"{pwhat}: a file"),
                size=size, platforms=_platforms(ft.get("platforms"), pwhat, allow_empty=True))


_S = r'"(?:[^"\\\x00-\x1f\x7f]|\\.)*"'  # a JSON string as _str writes it
_STRS = rf"\[(?:{_S}(?:, {_S})*)?\]"
_HEAD = re.compile(rf"\[(\[)?images\.([A-Za-z0-9_-]+|{_S})(\.parent|\.parent\.platforms|\.packages)?\]?\]")
_LINE = re.compile(rf"([a-z]+) = ({_S}|{_STRS}|[0-9]+)")
_PLATFORM_LINE = re.compile(rf"({_S}) = ({_S})")
_CHECKSUM_LINE = re.compile(r'checksum = "(sha256:[0-9a-f]{64})"')
_FILE_LINE = re.compile(rf"    \{{ name = ({_S}), hash = ({_S})(?:, size = ([0-9]+))?(?:, platforms = ({_STRS}))? \}},")


def _loads(raw: str) -> Any:
    """A JSON string or list of strings as _str writes it; most strings hold no escape: their text is
    between the quotes. ValueError for an escape JSON does not know."""
    return raw[1:-1] if raw[0] == '"' and "\\" not in raw else json.loads(raw)


class _NotOurShape(Exception):
    """A line `render` does not write: the fast reader gives up and tomllib reads the text."""


def _files(lines: list[str]) -> list[dict[str, Any]]:
    """The lines of a `files = [` list: `    { name = "..", hash = "..", size = N, platforms = [..] },`."""
    out: list[dict[str, Any]] = []
    match = _FILE_LINE.fullmatch
    for line in lines:
        f = match(line)
        if f is None:
            raise _NotOurShape
        name, digest, size, platforms = f.groups()
        # _loads, inline for the strings of each of a big lock's many file lines.
        item: dict[str, Any] = {"name": name[1:-1] if "\\" not in name else json.loads(name),
                                "hash": digest[1:-1] if "\\" not in digest else json.loads(digest)}
        if size is not None:
            item["size"] = int(size)
        if platforms is not None:
            item["platforms"] = _loads(platforms)
        out.append(item)
    return out


def _read_fast(lines: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """Lines in exactly the shape `render` writes, into data as tomllib would read them; _NotOurShape
    for any other line, ValueError for a list not closed or an escape JSON does not know."""
    table: dict[str, Any] | None = None  # the table lines go into
    blocks: dict[tuple[str, ...], dict[str, Any]] = {}  # a package block's lines -> the table they read into
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        i += 1
        if not line:
            continue
        if line[0] == "[":
            if not line.startswith("[["):
                table = _open(data, line)
                continue
            # A package block (a layered image's entry repeats its parent's): the lines up to the next header
            # read into the same table each time they come, so those read before are that table again.
            end = i
            while end < n and not lines[end].startswith("["):
                end += 1
            body = tuple(lines[i:end])
            known = blocks.get(body)
            table = _open(data, line, known)
            if known is not None:
                i = end
            else:
                blocks[body] = table
            continue
        if table is None:  # a value before the first header
            raise _NotOurShape
        if line == "files = [":  # the lines up to `]` are its files (most of a lock): read together
            end = lines.index("]", i)
            table["files"] = _files(lines[i:end])
            i = end + 1
            continue
        v = _LINE.fullmatch(line)
        if v is not None:
            raw = v.group(2)
            table[v.group(1)] = int(raw) if raw[0].isdigit() else _loads(raw)
            continue
        p = _PLATFORM_LINE.fullmatch(line)
        if p is None:
            raise _NotOurShape
        table[_loads(p.group(1))] = _loads(p.group(2))
    return data


@functools.lru_cache(maxsize=1024)  # each image's package header comes once per package
def _head(line: str) -> tuple[str, str | None]:
    """The image name and the kind of table (None, .parent, .parent.platforms, .packages) of a header."""
    h = _HEAD.fullmatch(line)
    if h is None or bool(h.group(1)) != (h.group(3) == ".packages") or line.endswith("]]") != bool(h.group(1)):
        raise _NotOurShape
    key = h.group(2)
    return _loads(key) if key.startswith('"') else key, h.group(3)


def _open(data: dict[str, Any], line: str, package: dict[str, Any] | None = None) -> dict[str, Any]:
    """The table a `[images.NAME...]` or `[[images.NAME.packages]]` header opens in data (for the latter:
    package, when given, else a new one)."""
    name, kind = _head(line)
    image: dict[str, Any] = data.setdefault("images", {}).setdefault(name, {})
    if kind is None:
        return image
    if kind == ".packages":
        if package is None:
            package = {}
        image.setdefault("packages", []).append(package)
        return package
    parent: dict[str, Any] = image.setdefault("parent", {})
    if kind == ".parent":
        return parent
    platforms: dict[str, Any] = parent.setdefault("platforms", {})  # .parent.platforms
    return platforms


def _fast(text: str) -> dict[str, Any] | None:
    """The data of a lock in exactly the shape `render` writes, as tomllib would read it, about 20 times
    faster (a big project's lock is megabytes); None for anything else, which tomllib then reads (and
    reports). parse still checks that the result renders back to the same text."""
    if not text.startswith(HEADER):
        return None
    lines = text[len(HEADER):].split("\n")
    m = re.fullmatch(r"version = ([0-9]+)", lines[0])
    if lines[-1] != "" or m is None:
        return None
    data: dict[str, Any] = {"version": int(m.group(1))}
    first = 1
    c = _CHECKSUM_LINE.fullmatch(lines[1]) if len(lines) > 2 else None
    if c is not None:
        data["checksum"], first = c.group(1), 2
    try:
        return _read_fast(lines[first:-1], data)
    except (_NotOurShape, ValueError):  # ValueError: an unclosed list, or an escape JSON does not know
        return None


def parse(path: Path, text: str) -> Lock:
    """The lock in text, or ConfigError located in the file: unreadable, newer, malformed or edited by hand."""
    data = _toml(path, text)
    _check_version(path, text, data.get("version"))
    try:
        _check_keys(data, {"version", "checksum", "images"}, "")
        seen: dict[int, Package] = {}  # data holds every table while parse runs: their ids stay theirs
        images = {name: _image(name, body, seen) for name, body in _table(data.get("images", {}), "images").items()}
    except _Bad as bad:
        raise error(path, text, f"{LOCK_FILE}: {bad.message}", needle=bad.needle, line=bad.line,
                    col=bad.col) from None
    lock = Lock(images=images)
    canonical = render(lock, checksum="checksum" in data)  # without one: written before dockwright wrote it
    if canonical != text:
        theirs, ours = text.splitlines(), canonical.splitlines()
        at = HEADER.count("\n") + 2 if "checksum" in data else 0  # the checksum's line, compared last
        line = next((n for n, (a, b) in enumerate(zip(theirs, ours), 1) if a != b and n != at),
                    min(len(theirs), len(ours)) + 1)
        if len(theirs) == len(ours) and line > len(theirs):  # only the checksum differs: the body was edited
            raise error(path, text, f"{LOCK_FILE} was edited by hand: its checksum is not that of what it says",
                        line=at, hint="undo the edit, or run `dockwright lock` to write it anew from the YAML")
        raise error(path, text, f"{LOCK_FILE} was edited by hand: line {line} is not what dockwright writes",
                    line=line)
    return lock


def _toml(path: Path, text: str) -> dict[str, Any]:
    """The text's data, read fast when it has the shape `render` writes, else by tomllib."""
    fast = _fast(text)
    if fast is not None:
        return fast
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)) or "not valid TOML"
        raise error(path, text, f"{LOCK_FILE} is not valid TOML: {message}",
                    line=int(found.group(1)) if found else None, col=int(found.group(2)) if found else 1) from None
    except RecursionError:  # tomllib recurses once per nested array or table
        line, col = too_deep(text)
        raise error(path, text, f"{LOCK_FILE} is not valid TOML: arrays or tables nested too deeply",
                    line=line, col=col) from None


class NewerFormat(ConfigError):
    """A lock written by a newer dockwright: `lock` does not write over it (it would lose what it cannot read)."""


def _check_version(path: Path, text: str, version: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise error(path, text, f"{LOCK_FILE} has no format version", needle="version")
    if version > FORMAT:
        raise NewerFormat(error(path, text, f"{LOCK_FILE} has format version {version}, newer than this dockwright "
                                            f"reads ({FORMAT})", needle="version",
                                hint="upgrade dockwright, or remove it and run `dockwright lock` to write it in "
                                     "this version's format").diagnostics)
    if version != FORMAT:
        raise error(path, text, f"{LOCK_FILE} has unknown format version {version}", needle="version")


def _inside_the_project(path: Path) -> None:
    """The lock beside the project file leads nowhere out of the project (errors.inside), or a ConfigError."""
    try:
        inside(path, path.parent)
    except OSError:
        raise ConfigError([Diagnostic(None, f"{shown_path(path)} leads outside the project directory through a "
                                            "symbolic link; dockwright reads nothing outside the project",
                                      "replace the link with the lock file itself (dockwright lock writes it)")]
                          ) from None


def read_text(path: Path) -> str | None:
    """The lock file's text, or None when there is none. UsageError when it cannot be read (a FIFO, a
    directory, no permission: as for the project file); ConfigError at the line where it is not UTF-8."""
    try:
        reads.look(path)
        _inside_the_project(path)
        raw = read_regular(path)
        reads.note(path, raw)  # the fast path's record holds the lock compile read (reads.py)
    except FileNotFoundError:
        return None
    except RuntimeError:  # a symbolic link loop, before Python 3.13
        raise UsageError(f"cannot read {shown_path(path)}: a symbolic link loop") from None
    except IsADirectoryError:
        raise ConfigError([Diagnostic(None, f"{shown_path(path)} is a directory, not the lock file",
                                      "move it away: dockwright lock writes the lock file there")]) from None
    except OSError as exc:
        raise UsageError(f"cannot read {shown_path(path)}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise error(path, raw.decode("utf-8", "replace"), f"{LOCK_FILE} is not UTF-8 text", line=line) from None


def read(path: Path) -> Lock | None:
    """The lock beside the project file, or None when there is none. An unchanged lock is not parsed again:
    see _cached."""
    text = read_text(path)
    if text is None:
        return None
    where = _cache_file(path)
    if where is None:
        return parse(path, text)
    text_digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    found = _cached(where, text_digest)
    if found is not None:
        return found
    lock = parse(path, text)
    _store(where, text_digest, lock)
    return lock


# -- the parsed-lock cache -----------------------------------------------------------------------
#
# Parsing a big lock and proving that it is exactly what `render` writes costs about as much as compiling the
# project. So `read` keeps the lock it parsed under the user's cache folder (record.cache_dir: the fast path's
# folder; DOCKWRIGHT_NO_CACHE turns it off), one entry per lock file, and uses it again only when the entry is
# in this format, was written by this very dockwright (record.identity: its files and the Python running it),
# for a lock of exactly these bytes (their sha256), and its contents are intact (their sha256). Anything else
# (no entry, unreadable, truncated, another version, another lock) parses the text, and only a lock that
# parsed without error is kept. The entry is written to a temporary file and renamed over the old one.

_CACHE_FORMAT = 1


def _cache_file(path: Path) -> str | None:
    folder = record.cache_dir()
    if folder is None:
        return None
    try:
        where = os.path.abspath(path).encode("utf-8", "surrogateescape")
    except OSError:  # a relative path, and the current directory is gone
        return None
    return os.path.join(folder, "lock-" + hashlib.sha256(where).hexdigest()[:40])


def _pack(lock: Lock) -> bytes:
    """The lock as marshal'd tuples, each distinct package once (a layered image repeats its parent's)."""
    index: dict[Package, int] = {}
    images = []
    for img in lock.images.values():
        refs = tuple(index.setdefault(p, len(index)) for p in img.packages)
        parent = None if img.parent is None else (img.parent.ref, img.parent.digest, img.parent.platforms)
        images.append((img.name, img.python, img.platforms, img.inputs, parent, refs))
    packages = tuple((p.name, p.version, p.via, tuple((f.name, f.hash, f.size, f.platforms) for f in p.files),
                      p.platforms) for p in index)
    return marshal.dumps((packages, tuple(images)))


def _unpack(payload: bytes) -> Lock:
    raw_packages, raw_images = marshal.loads(payload)
    packages = [Package(name=name, version=version, via=via, files=tuple(File(*f) for f in files),
                        platforms=platforms) for name, version, via, files, platforms in raw_packages]
    return Lock(images={name: LockedImage(name=name, python=python, platforms=platforms, inputs=inputs,
                                          parent=None if parent is None else Parent(*parent),
                                          packages=tuple(packages[i] for i in refs))
                        for name, python, platforms, inputs, parent, refs in raw_images})


def _cached(where: str, text_digest: str) -> Lock | None:
    """The lock kept for a text of this digest, or None: no entry, or one not to be trusted."""
    try:
        with open(where, "rb") as handle:
            entry = marshal.loads(handle.read())
        form, identity, digest_of_text, digest_of_payload, payload = entry
        if (form != _CACHE_FORMAT or digest_of_text != text_digest or identity != record.identity()
                or hashlib.sha256(payload).hexdigest() != digest_of_payload):
            return None
        return _unpack(payload)
    except (OSError, ValueError, TypeError, EOFError, IndexError, RecursionError):
        return None  # no entry, or one this code did not write: parse the text


def _store(where: str, text_digest: str, lock: Lock) -> None:
    """Keep the parsed lock (record.keep: atomically, never failing the command)."""
    try:
        payload = _pack(lock)
        entry = marshal.dumps((_CACHE_FORMAT, record.identity(), text_digest, hashlib.sha256(payload).hexdigest(),
                               payload))
    except ValueError:
        return
    record.keep(where, entry)


__all__ = ["LOCK_FILE", "FORMAT", "NewerFormat", "PLATFORMS", "File", "Package", "Parent", "LockedImage", "Lock", "render",
           "parse", "read", "read_text", "digest", "error"]
