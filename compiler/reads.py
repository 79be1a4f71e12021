"""What one compile read, for the fast path's record (compiler/fastpath.py) and `compile --watch`: standard library
only.

Readers note the exact bytes they read, so the record holds the digest of what compile saw (not of
what is on disk a moment later); every path compile reads or looks at is noted with where it led at that moment
(record.resolved: its real path and kind, so a file or folder swapped for a link is a change even when the bytes
are the same); and loading notes each include pattern with the files it found.
"""

from __future__ import annotations

import hashlib

from . import record

# absolute path -> sha256 of the bytes compile read (the last read wins; a file is read once)
files: dict[str, str] = {}
# absolute path -> (real path, kind) of each path compile read or looked at, when it first did
places: dict[str, tuple[str, str]] = {}
# (directory, pattern, each match with where it leads) for each include pattern expanded
globs: list[tuple[str, str, tuple[tuple[str, tuple[str, str]], ...]]] = []
# absolute paths compile looked at (exists? file or directory?) without reading them: `compile --watch` watches them
probed: set[str] = set()


def reset() -> None:
    files.clear()
    places.clear()
    globs.clear()
    probed.clear()


def look(path: object) -> None:
    """Note where path leads now, unless compile looked at it before (called before reading it)."""
    if str(path) not in places:
        places[str(path)] = record.resolved(str(path))


def note_probe(path: object) -> None:
    look(path)
    probed.add(str(path))


def note(path: object, data: bytes) -> None:
    look(path)
    files[str(path)] = hashlib.sha256(data).hexdigest()


def note_glob(base: object, pattern: str, matches: list[str]) -> None:
    globs.append((str(base), pattern, record.matched(str(base), matches)))
