"""The fast path's record (see fastpath.py): where it is kept, what it holds, how it is written and compared.
Standard library only, imported lazily: `compile` on an unchanged project reads it without the compiler."""

from __future__ import annotations

import os
import sys
from typing import Any

FORMAT = 2
PROJECT_FILE = "dockwright.yaml"
LOCK_FILE = "dockwright.lock"
# A local package's build files: what makes a directory a package, and where its dependencies are declared.
PACKAGE_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


# ----- the key: where, printed how -----

def _color(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def key(cwd: str, quiet: bool, file: str | None) -> tuple[Any, ...]:
    return (FORMAT, cwd, quiet, file, _color(sys.stderr), _color(sys.stdout))


def cache_dir() -> str | None:
    """The user's cache folder for dockwright (DOCKWRIGHT_CACHE_DIR, else $XDG_CACHE_HOME/dockwright, else
    ~/.cache/dockwright), or None: DOCKWRIGHT_NO_CACHE is set, or there is no home to put it in."""
    if os.environ.get("DOCKWRIGHT_NO_CACHE"):
        return None
    folder = os.environ.get("DOCKWRIGHT_CACHE_DIR") or ""
    if not os.path.isabs(folder):
        base = os.environ.get("XDG_CACHE_HOME") or ""
        if not os.path.isabs(base):
            home = os.path.expanduser("~")
            if home == "~":
                return None
            base = os.path.join(home, ".cache")
        folder = os.path.join(base, "dockwright")
    return folder


def cache_path(k: tuple[Any, ...]) -> str | None:
    folder = cache_dir()
    if folder is None:
        return None
    import hashlib

    digest = hashlib.sha256(repr(k).encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return os.path.join(folder, f"compile-{digest}")


# ----- what is compared -----

def identity() -> tuple[Any, ...]:
    """dockwright's code and data, and the Python running it."""
    here = os.path.dirname(os.path.abspath(__file__))
    seen: list[tuple[str, int, int]] = []
    folders = [here]
    for name in ("schemas", "templates"):
        for candidate in (os.path.join(here, "_data", name), os.path.join(os.path.dirname(here), name)):
            if os.path.isdir(candidate):
                folders.append(candidate)
                break
    for folder in folders:
        stack = [folder]
        while stack:
            current = stack.pop()
            with os.scandir(current) as entries:
                for e in sorted(entries, key=lambda e: e.name):
                    if e.name == "__pycache__" or e.name.startswith("."):
                        continue
                    if e.is_dir(follow_symlinks=False):
                        if current != here or e.name != "_data":
                            stack.append(e.path)
                        continue
                    st = e.stat()
                    seen.append((e.path, st.st_size, st.st_mtime_ns))
    return (sys.version, tuple(seen))


def located(cwd: str, file: str | None) -> str | None:
    """The project file as cli.locate finds it (absolute, not resolved), or None when it would fail."""
    if file is not None:
        path = os.path.join(cwd, file)
        if os.path.isdir(path):
            path = os.path.join(path, PROJECT_FILE)
        if not os.path.isfile(path):
            return None
        # As pathlib spells it: no '.' parts, no repeated or trailing '/' ('..' stays).
        return "/" + "/".join(p for p in path.split("/") if p not in ("", "."))
    folder = cwd
    while True:
        candidate = os.path.join(folder, PROJECT_FILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def sha(path: str) -> str | None:
    import hashlib

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def resolved(path: str) -> tuple[str, str]:
    """Where path leads and what is there: its real path (every symbolic link on the way followed, so a file or
    a folder on the way swapped for a link shows) and its kind as inputs._probe sees it (file, dir, special,
    missing, `error:<reason>`). Everything compile judges a path by (inside the project or not, through which
    links, of which kind) follows from these two and the project root's own: the fast path compares them for
    every path compile read or looked at, and so does `compile --watch`."""
    import stat

    real = os.path.realpath(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return real, "missing"
    except OSError as exc:
        return real, f"error:{exc.strerror}"
    return real, "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "special"


def glob_state(base: str, pattern: str) -> tuple[tuple[str, tuple[str, str]], ...]:
    """An include pattern's matches, each with where it leads (resolved), as load.py expands it."""
    import glob

    return matched(base, sorted(glob.glob(pattern, root_dir=base, recursive=True)))


def matched(base: str, matches: list[str]) -> tuple[tuple[str, tuple[str, str]], ...]:
    return tuple((m, resolved(os.path.join(base, m))) for m in matches)


def packages_state(root: str, dirs: list[str]) -> tuple[Any, ...]:
    """Each local package's build files (by content: they declare the dependencies dockwright.lock resolves)
    and where the directory really is."""
    return tuple((d, tuple(sha(os.path.join(root, d, n)) for n in PACKAGE_FILES),
                  os.path.realpath(os.path.join(root, d))) for d in dirs)


def _way(root: str, parts: list[str]) -> tuple[list[tuple[str, int]], str | None] | None:
    """Each folder from root down to root/parts (its mode, -1 when missing), and the path when it is a folder to
    walk; None when it cannot be looked at."""
    import stat

    way: list[tuple[str, int]] = []
    path = root
    for part in parts:
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            way.append((part, -1))
            return way, None
        except OSError:
            return None
        way.append((part, mode))
        if not stat.S_ISDIR(mode):
            return way, None
    return way, path


def _entry(e: os.DirEntry[str], name: str) -> tuple[str, int, str | None]:
    """(name, mode, what it holds: a file's sha256, a link's target); OSError when it cannot be read."""
    import stat

    mode = e.stat(follow_symlinks=False).st_mode
    if stat.S_ISLNK(mode):
        return (name, mode, os.readlink(e.path))
    if stat.S_ISREG(mode):
        digest = sha(e.path)
        if digest is None:
            raise OSError(f"cannot read {e.path}")
        return (name, mode, digest)
    return (name, mode, None)


def tree(root: str, out: str) -> tuple[Any, ...] | None:
    """Every entry under root/out (kind, mode, bytes' digest; links by target), and each folder on the way."""
    found = _way(root, [p for p in out.split("/") if p not in ("", ".")])
    if found is None:
        return None
    way, path = found
    if path is None:
        return (tuple(way), ())
    entries: list[tuple[str, int, str | None]] = []
    stack = [("", path)]
    try:
        while stack:
            rel, folder = stack.pop()
            with os.scandir(folder) as it:
                for e in sorted(it, key=lambda e: e.name):
                    entries.append(_entry(e, f"{rel}/{e.name}" if rel else e.name))
                    if e.is_dir(follow_symlinks=False):
                        stack.append((entries[-1][0], e.path))
    except OSError:
        return None
    return (tuple(way), tuple(sorted(entries)))


# ----- reading and comparing -----

def load(k: tuple[Any, ...]) -> dict[str, Any] | None:
    """The record kept under key k, or None (no record, unreadable, another key)."""
    where = cache_path(k)
    if where is None:
        return None
    import marshal

    try:
        with open(where, "rb") as handle:
            found = marshal.loads(handle.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return found if isinstance(found, dict) and found.get("key") == k else None


def unchanged(found: dict[str, Any], cwd: str, file: str | None) -> bool:
    """Whether everything the record saw is still as it saw it (cheapest comparisons first)."""
    root = found["root"]
    return (located(cwd, file) == found["main"]
            and all(sha(path) == digest for path, digest in found["files"])
            and all(resolved(path) == where for path, where in found["places"])
            and all(glob_state(base, pattern) == state for base, pattern, state in found["globs"])
            and packages_state(root, [d for d, _, _ in found["packages"]]) == found["packages"]
            and tree(root, found["output"]) == found["tree"]
            and identity() == found["identity"])


# ----- writing -----

Globs = list[tuple[str, str, tuple[tuple[str, tuple[str, str]], ...]]]


def save(*, quiet: bool, file: str | None, main: str, root: str, output: str, paths: list[str],
         packages: list[str], reads: dict[str, str], places: dict[str, tuple[str, str]], globs: Globs,
         check_lines: list[tuple[bool, str]], compile_lines: list[tuple[bool, str]],
         expected: dict[str, str]) -> None:
    """Record an up-to-date project (called by cli.py after a full compile); never fails the command.

    reads, places and globs are as compile saw them (reads.py): each file's digest, where each path it read or
    looked at led (resolved), each include pattern's matches; paths are more that it looked at (absolute)."""
    try:
        k = key(os.getcwd(), quiet, file)
        where = cache_path(k)
        if where is None:
            return
        state = tree(root, output)
        if state is None:
            return
        files = dict(reads)
        lock = os.path.join(os.path.dirname(main), LOCK_FILE)
        files.setdefault(lock, sha(lock))  # type: ignore[arg-type]
        seen = {path: resolved(path) for path in [main, root, lock, *paths]}
        seen.update(places)
        record = {
            "key": k, "main": main, "root": root, "output": output,
            "files": tuple(sorted(files.items(), key=lambda kv: kv[0])),
            "places": tuple(sorted(seen.items())),
            "globs": tuple(globs),
            "packages": packages_state(root, sorted(packages)),
            "tree": state,
            "identity": identity(),
            "check": tuple(check_lines), "compile": tuple(compile_lines),
        }
        if _moved(record, expected):
            forget(quiet=quiet, file=file)
            return
        _write(where, record)
    except (OSError, ValueError):
        return


def _moved(record: dict[str, Any], expected: dict[str, str]) -> bool:
    """Whether something changed while compiling: the output as recorded must be the output compiled (not a file
    edited meanwhile), and what was read and looked at must still be as compile saw it."""
    on_disk = {name: digest for name, _, digest in record["tree"][1]}
    return (any(on_disk.get(rel) != digest for rel, digest in expected.items())
            or any(sha(path) != digest for path, digest in record["files"])
            or any(resolved(path) != where for path, where in record["places"])
            or any(glob_state(base, pattern) != state for base, pattern, state in record["globs"]))


def _write(where: str, record: dict[str, Any]) -> None:
    import marshal

    keep(where, marshal.dumps(record))


def keep(where: str, data: bytes) -> None:
    """Write an entry of the user's cache atomically (a temporary file beside it, renamed over it). Never fails
    the command: a cache that cannot be written only makes the next run slower."""
    import tempfile

    try:
        folder = os.path.dirname(where)
        os.makedirs(folder, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=os.path.basename(where) + ".", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, where)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        return


def forget(*, quiet: bool, file: str | None) -> None:
    try:
        where = cache_path(key(os.getcwd(), quiet, file))
        if where is not None:
            os.unlink(where)
    except OSError:
        pass
