"""`compile` and `compile --check` on an unchanged project, answered without importing the compiler.

The console script starts here (standard library only, imported lazily). After a full `compile` or
`compile --check` that found the output up to date, cli.py records, under the user's cache directory
(DOCKWRIGHT_CACHE_DIR, else $XDG_CACHE_HOME/dockwright, else
~/.cache/dockwright), keyed by the current directory and the options:

- dockwright's own identity: size and mtime of every file of the package, its schemas and templates,
  and the Python version;
- where the project file was found (as `locate` finds it);
- the sha256 of every byte compile read (project and included files, requirements files and their
  -r children, certificates, custom Dockerfiles, .dockerignore), and the lock file beside the project;
- each include pattern with what it matched (and whether each match is a file, and its real path);
- what every referenced path is (file, dir, missing, outside through a link), and the build files
  of each local package;
- the whole output tree: every entry's kind, mode and bytes (sha256), and each folder on the way to it;
- the exact lines the full run printed, and its exit code (0).

The next run with the same key re-checks all of it, and prints the recorded lines only when every
item is equal; anything else (a missing or unreadable record, any difference) runs the full
compile. The record is never in the output tree: it would be a file `--check` has to ignore, and
one `git add .` away from being committed. DOCKWRIGHT_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import os
import sys
from typing import Any

FORMAT = 1
PROJECT_FILE = "dockwright.yaml"
LOCK_FILE = "dockwright.lock"
_PACKAGE_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


def run() -> None:
    """The console script and `python -m compiler`. Ctrl-C at any moment, even while the process is
    already leaving (a KeyboardInterrupt that replaces the SystemExit on its way out), is one line and
    exit 130, never a traceback; the output is the old tree or the new one either way (emit.py)."""
    try:
        code = answer(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from .cli import run as full

        full()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


# ----- the key: which command, where, printed how -----

def parse_args(args: list[str]) -> tuple[bool, bool, str | None] | None:
    """(check, quiet, file) for `compile [--check] [-q] [-f FILE]` (options before or after the command),
    else None: every other command line goes to click."""
    command = None
    check = quiet = False
    group_file: str | None = None
    command_file: str | None = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-q", "--quiet"):
            quiet = True
        elif a == "--check" and command is not None:
            if check:
                return None
            check = True
        elif a in ("-f", "--file") and i + 1 < len(args):
            i += 1
            if command is None:
                group_file = args[i]
            else:
                command_file = args[i]
        elif a.startswith("--file=") and len(a) > 7:
            if command is None:
                group_file = a[7:]
            else:
                command_file = a[7:]
        elif a == "compile" and command is None:
            command = a
        else:
            return None
        i += 1
    if command is None:
        return None
    return check, quiet, command_file or group_file


def _color(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def key(cwd: str, quiet: bool, file: str | None) -> tuple[Any, ...]:
    return (FORMAT, cwd, quiet, file, _color(sys.stderr), _color(sys.stdout))


def cache_path(k: tuple[Any, ...]) -> str | None:
    if os.environ.get("DOCKWRIGHT_NO_CACHE"):
        return None
    import hashlib

    folder = os.environ.get("DOCKWRIGHT_CACHE_DIR") or ""
    if not os.path.isabs(folder):
        base = os.environ.get("XDG_CACHE_HOME") or ""
        if not os.path.isabs(base):
            home = os.path.expanduser("~")
            if home == "~":
                return None
            base = os.path.join(home, ".cache")
        folder = os.path.join(base, "dockwright")
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


def probe(root: str, rel: str) -> str:
    """What root/rel is, as inputs._probe sees it."""
    import stat

    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, rel))
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        return "outside"
    try:
        mode = os.stat(os.path.join(root, rel)).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        return f"error:{exc.strerror}"
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "special"


def glob_state(base: str, pattern: str) -> tuple[tuple[str, bool, str], ...]:
    import glob

    matches = sorted(glob.glob(pattern, root_dir=base, recursive=True))
    return tuple((m, os.path.isfile(os.path.join(base, m)), os.path.realpath(os.path.join(base, m)))
                 for m in matches)


def packages_state(root: str, dirs: list[str]) -> tuple[Any, ...]:
    return tuple((d, tuple(os.path.isfile(os.path.join(root, d, n)) for n in _PACKAGE_FILES),
                  os.path.realpath(os.path.join(root, d))) for d in dirs)


def tree(root: str, out: str) -> tuple[Any, ...] | None:
    """Every entry under root/out (kind, mode, bytes' digest; links by target), and each folder on the way."""
    import stat

    parts = [p for p in out.split("/") if p not in ("", ".")]
    way: list[tuple[str, int]] = []
    path = root
    for part in parts:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            way.append((part, -1))
            return (tuple(way), ())
        except OSError:
            return None
        way.append((part, st.st_mode))
        if not stat.S_ISDIR(st.st_mode):
            return (tuple(way), ())
    entries: list[tuple[str, int, str | None]] = []
    stack = [("", path)]
    while stack:
        rel, folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                found = sorted(it, key=lambda e: e.name)
        except OSError:
            return None
        for e in found:
            name = f"{rel}/{e.name}" if rel else e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                return None
            if stat.S_ISDIR(st.st_mode):
                entries.append((name, st.st_mode, None))
                stack.append((name, e.path))
            elif stat.S_ISLNK(st.st_mode):
                entries.append((name, st.st_mode, os.readlink(e.path)))
            elif stat.S_ISREG(st.st_mode):
                digest = sha(e.path)
                if digest is None:
                    return None
                entries.append((name, st.st_mode, digest))
            else:
                entries.append((name, st.st_mode, None))
    return (tuple(way), tuple(sorted(entries)))


# ----- answering -----

def answer(args: list[str]) -> int | None:
    """The exit code after printing the recorded lines, or None: run the full command."""
    try:
        return _answer(args)
    except Exception:  # noqa: BLE001 - a record that cannot be read or compared: the full command decides
        return None


def _answer(args: list[str]) -> int | None:
    parsed = parse_args(args)
    if parsed is None:
        return None
    check, quiet, file = parsed
    cwd = os.getcwd()
    k = key(cwd, quiet, file)
    where = cache_path(k)
    if where is None:
        return None
    import marshal

    try:
        with open(where, "rb") as handle:
            record = marshal.loads(handle.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(record, dict) or record.get("key") != k:
        return None
    if located(cwd, file) != record["main"]:
        return None
    root = record["root"]
    for path, digest in record["files"]:
        if sha(path) != digest:
            return None
    for base, pattern, state in record["globs"]:
        if glob_state(base, pattern) != state:
            return None
    for rel, kind in record["probes"]:
        if probe(root, rel) != kind:
            return None
    if packages_state(root, [d for d, _, _ in record["packages"]]) != record["packages"]:
        return None
    if tree(root, record["output"]) != record["tree"]:
        return None
    if identity() != record["identity"]:
        return None
    for err, text in record["check" if check else "compile"]:
        (sys.stderr if err else sys.stdout).write(text + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


def save(*, quiet: bool, file: str | None, main: str, root: str, output: str, probes: dict[str, str],
         packages: list[str], reads: dict[str, str], globs: list[tuple[str, str, tuple[str, ...]]],
         check_lines: list[tuple[bool, str]], compile_lines: list[tuple[bool, str]],
         expected: dict[str, str]) -> None:
    """Record an up-to-date project (called by cli.py after a full compile); never fails the command."""
    try:
        cwd = os.getcwd()
        k = key(cwd, quiet, file)
        where = cache_path(k)
        if where is None:
            return
        files = dict(reads)
        lock = os.path.join(os.path.dirname(main), LOCK_FILE)
        files.setdefault(lock, sha(lock))  # type: ignore[arg-type]
        state = tree(root, output)
        if state is None:
            return
        # The output as recorded must be the output compiled (not a file edited while it compiled).
        on_disk = {name: digest for name, _, digest in state[1]}
        if any(on_disk.get(rel) != digest for rel, digest in expected.items()):
            forget(quiet=quiet, file=file)
            return
        record = {
            "key": k, "main": main, "root": root, "output": output,
            "files": tuple(sorted(files.items(), key=lambda kv: kv[0])),
            "globs": tuple((base, pattern, glob_state(base, pattern)) for base, pattern, _ in globs),
            "probes": tuple(sorted((rel, probe(root, rel)) for rel in probes)),
            "packages": packages_state(root, sorted(packages)),
            "tree": state,
            "identity": identity(),
            "check": tuple(check_lines), "compile": tuple(compile_lines),
        }
        # What was read must still be there: a file changed while compiling is not recorded as seen.
        if any(sha(path) != digest for path, digest in record["files"]) \
                or any(tuple(m for m, _, _ in state_) != found for (_, _, state_), (_, _, found)
                       in zip(record["globs"], globs)) \
                or any(kind != probes[rel] for rel, kind in record["probes"]):
            forget(quiet=quiet, file=file)
            return
        import marshal

        os.makedirs(os.path.dirname(where), exist_ok=True)
        temp = f"{where}.{os.getpid()}.tmp"
        with open(temp, "wb") as handle:
            handle.write(marshal.dumps(record))
        os.replace(temp, where)
    except (OSError, ValueError):
        return


def forget(*, quiet: bool, file: str | None) -> None:
    try:
        where = cache_path(key(os.getcwd(), quiet, file))
        if where is not None:
            os.unlink(where)
    except OSError:
        pass
