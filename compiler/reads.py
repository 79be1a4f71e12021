"""What one compile read, for the fast path's record (compiler/fastpath.py): standard library only.

Readers note the exact bytes they read, so the record holds the digest of what compile saw (not of
what is on disk a moment later), and loading notes each include pattern with the files it found.
"""

from __future__ import annotations

import hashlib

# absolute path -> sha256 of the bytes compile read (the last read wins; a file is read once)
files: dict[str, str] = {}
# (directory, pattern, sorted matches) for each include pattern expanded
globs: list[tuple[str, str, tuple[str, ...]]] = []
# absolute paths compile looked at (exists? file or directory?) without reading them: `compile --watch` watches them
probed: set[str] = set()


def reset() -> None:
    files.clear()
    globs.clear()
    probed.clear()


def note_probe(path: object) -> None:
    probed.add(str(path))


def note(path: object, data: bytes) -> None:
    files[str(path)] = hashlib.sha256(data).hexdigest()


def note_glob(base: object, pattern: str, matches: list[str]) -> None:
    globs.append((str(base), pattern, tuple(matches)))
