"""`compile` and `compile --check` on an unchanged project, answered without importing the compiler.

The console script starts here (standard library only, imported lazily). After a full `compile` or
`compile --check` that found the output up to date, cli.py records (record.py), under the user's cache directory
(DOCKWRIGHT_CACHE_DIR, else $XDG_CACHE_HOME/dockwright, else
~/.cache/dockwright), keyed by the current directory and the options:

- dockwright's own identity: size and mtime of every file of the package, its schemas and templates,
  and the Python version;
- where the project file was found (as `locate` finds it);
- the sha256 of every byte compile read (project and included files, requirements files and their
  -r children, certificates, custom Dockerfiles, .dockerignore), and the lock file beside the project;
- where every path compile read or looked at led when it did (record.resolved: its real path, every link on the
  way followed, and its kind), and the project root's: whatever compile judges a path by (inside the project or
  not, through which links, of which kind) follows from them, so the same bytes behind a new link fall through;
- each include pattern with what it matched (and where each match leads);
- the contents of the build files of each local package, and where each package really is;
- the whole output tree: every entry's kind, mode and bytes (sha256), and each folder on the way to it;
- the exact lines the full run printed, and its exit code (0).

The next run with the same key re-checks all of it, and prints the recorded lines only when every
item is equal; anything else (a missing or unreadable record, any difference) runs the full
compile. The record is never in the output tree: it would be a file `--check` has to ignore, and
one `git add .` away from being committed. DOCKWRIGHT_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import gc
import os
import sys

from . import record


def run() -> None:
    """The console script and `python -m compiler`. Ctrl-C at any moment, even while the process is
    already leaving (a KeyboardInterrupt that replaces the SystemExit on its way out), is one line and
    exit 130, never a traceback; the output is the old tree or the new one either way (emit.py).

    A short-lived process, so the cyclic garbage collector only costs time, from the first import on
    (a watch collects after each round: cli._watch_once)."""
    gc.disable()
    try:
        code = answer(sys.argv[1:])
        if code is not None:
            sys.exit(code)
        from .cli import run as full

        full()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


# ----- which command -----

def _file(args: list[str], i: int) -> tuple[str, int] | None:
    """The value of `-f FILE`, `--file FILE` or `--file=FILE` at args[i], and how many words it takes."""
    a = args[i]
    if a in ("-f", "--file") and i + 1 < len(args):
        return args[i + 1], 2
    if a.startswith("--file=") and len(a) > 7:
        return a[7:], 1
    return None


def parse_args(args: list[str]) -> tuple[bool, bool, str | None] | None:
    """(check, quiet, file) for `compile [--check] [-q] [-f FILE]` (options before or after the command),
    else None: every other command line goes to click."""
    command = None
    check = quiet = False
    files: dict[bool, str] = {}  # the group's -f (False: before the command) and the command's (True)
    i = 0
    while i < len(args):
        a = args[i]
        option = _file(args, i)
        if option is not None:
            files[command is not None] = option[0]
            i += option[1]
            continue
        if a in ("-q", "--quiet"):
            quiet = True
        elif a == "--check" and command is not None and not check:
            check = True
        elif a == "compile" and command is None:
            command = a
        else:
            return None
        i += 1
    if command is None:
        return None
    return check, quiet, files.get(True) or files.get(False)


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
    found = record.load(record.key(cwd, quiet, file))
    if found is None or not record.unchanged(found, cwd, file):
        return None
    for err, text in found["check" if check else "compile"]:
        (sys.stderr if err else sys.stdout).write(text + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    return 0
