"""Locations, diagnostics and the error types; each diagnostic formats itself once."""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from .credentials import mask_credentials


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def kind_of(mode: int) -> str:
    """What a file that is not a regular one is, in words (a named pipe (FIFO), a socket, ...)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: Path | str) -> bytes:
    """A regular file's bytes. Opened without blocking, so a FIFO or a device in a file's place is an
    OSError saying what it is, never a hang; a directory is IsADirectoryError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "it is a directory, not a file", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"it is {kind_of(mode)}, not a regular file", str(path))
        return handle.read()


def inside(path: Path, root: Path) -> str:
    """path resolved, when it stays inside the project root; an OSError saying so when a symbolic link leads out."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise OSError(errno.EACCES, "it leads outside the project directory through a symbolic link", str(path))
    return real


def regular_inside(path: Path, root: Path) -> str:
    """path resolved, inside the project root and a regular file (not a FIFO, a device, a directory), for a
    library that opens files by name (the TLS files of a builder); else an OSError saying why not."""
    real = inside(path, root)
    mode = os.stat(real).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "it is a directory, not a file", str(path))
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, f"it is {kind_of(mode)}, not a regular file", str(path))
    return real


def read_inside(path: Path, root: Path) -> bytes:
    """A project file's bytes, as read_regular reads them (no FIFO, no device), from its resolved path, which
    must stay inside the project root: a symbolic link out of the project is an OSError saying so."""
    return read_regular(inside(path, root))


def shown_path(path: Path, cwd: Path | None = None) -> str:
    """A path as the user should read it: relative to cwd when it is below it, else absolute."""
    try:
        rel = os.path.relpath(path, cwd if cwd is not None else Path.cwd())
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


@dataclass(frozen=True, order=True, slots=True)  # slots: a large file has a million of them
class Location:
    """A 1-based line and column in a file, plus the text of that line."""

    file: Path
    line: int
    col: int
    source_line: str = field(default="", compare=False)

    def display_path(self, cwd: Path | None = None) -> str:
        return shown_path(self.file, cwd)

    def short(self, root: Path | None = None) -> str:
        """`file:line` with the file relative to root (for explain)."""
        path = self.display_path(root)
        return f"{path}:{self.line}"


@dataclass(frozen=True)
class Diagnostic:
    """One located problem: `file:line:col: severity: message (hint)`."""

    location: Location | None
    message: str
    hint: str | None = None
    severity: str = "error"
    notes: tuple[tuple[str, Location | None], ...] = ()

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.location is None:
            return ("", 0, 0, self.message)
        loc = self.location
        return (str(loc.file), loc.line, loc.col, self.message)

    def format(self, *, cwd: Path | None = None, color: bool = False) -> str:
        sev = self.severity
        if color:
            code = "31" if sev == "error" else "33"
            sev = f"\033[1;{code}m{sev}\033[0m"
        text = _bounded(_safe(self.message if self.hint is None else f"{self.message} ({self.hint})"))
        if self.location is None:
            return f"{sev}: {text}" + "".join(f"\n      = note: {_safe(n)}" for n, _ in self.notes)
        loc = self.location
        head = f"{loc.display_path(cwd)}:{loc.line}:{loc.col}: {sev}: {text}"
        out = head
        shown, col = _window(*mask_credentials(_printable(loc.source_line), loc.col))
        if shown:
            gutter = " " * 6 + "|"
            caret = " " * col + "^"
            if color:
                caret = f"\033[1;32m{caret}\033[0m"
            out = f"{head}\n{loc.line:>5} | {shown}\n{gutter}{caret}"
        for text_, at in self.notes:
            where = f" at {at.display_path(cwd)}:{at.line}:{at.col}" if at is not None else ""
            out += f"\n      = note: {_bounded(_safe(text_))}{where}"
        return out


# What one message or source line may take on the screen: a value of megabytes is shown by its ends.
MAX_MESSAGE = 1000
MAX_LINE = 200


def _bounded(text: str) -> str:
    """text, or its beginning and end with how much was left out between them (the hint is at the end)."""
    if len(text) <= MAX_MESSAGE:
        return text
    head, tail = MAX_MESSAGE * 3 // 5, MAX_MESSAGE // 5
    return f"{text[:head]}...[{len(text) - head - tail:,} characters]...{text[-tail:]}"


def _window(line: str, col: int) -> tuple[str, int]:
    """The source line around the caret's column when it is too long to show whole, and the caret's column in it."""
    if len(line) <= MAX_LINE:
        return line, col
    start = max(0, min(col - MAX_LINE // 2, len(line) - MAX_LINE))
    end = start + MAX_LINE
    before, after = ("..." if start else ""), ("..." if end < len(line) else "")
    return f"{before}{line[start:end]}{after}", col - start + len(before)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _safe(text: str) -> str:
    """A message as printed: one line, and no secret that a value in it carried."""
    return _escaped(mask_credentials(text)[0])


def shown_message(text: str) -> str:
    """An error message as printed: its line and its `hint:` line (the last one) with the control
    characters and credentials that values in it carried escaped or masked, so a value (an environment
    variable, a path or name given on the command line, an engine's answer) cannot drive the terminal."""
    message, hint = text.rsplit("\nhint: ", 1) if "\nhint: " in text else (text, None)  # one hint, the last
    return _safe(message) if hint is None else f"{_safe(message)}\nhint: {_safe(hint)}"


def _escaped(text: str) -> str:
    """A message as one line: a control character or line break from a value is shown as its escape (`\\n`)."""
    return _UNPRINTABLE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def _printable(line: str) -> str:
    """The source line as shown under a message: one character per column, nothing the terminal obeys."""
    return "".join(" " if c == "\t" else "?" if (ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0
                                                  or c in "\u2028\u2029") else c
                   for c in line)


class DockwrightError(Exception):
    """Base of every error the CLI maps to an exit code."""

    exit_code = 1


class ConfigError(DockwrightError):
    """Invalid input: one or more located diagnostics (exit 1)."""

    exit_code = 1

    def __init__(self, diagnostics: Sequence[Diagnostic], warnings: Sequence[Diagnostic] = (),
                 unstored_warnings: int = 0) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.warnings = sorted(warnings, key=Diagnostic.sort_key)
        self.unstored_warnings = unstored_warnings  # given beyond Collector's MAX_ERRORS: counted, not kept
        super().__init__(self.render())

    def render(self, *, cwd: Path | None = None, color: bool = False) -> str:
        return "\n".join(d.format(cwd=cwd, color=color) for d in self.diagnostics)


class OutputConflict(ConfigError):
    """Something that dockwright did not write is where its output belongs (exit 1)."""


class UsageError(DockwrightError):
    """The command line or the environment it ran in is wrong (exit 2)."""

    exit_code = 2


class BuildError(DockwrightError):
    """An image failed to build or a builder could not be reached (exit 3)."""

    exit_code = 3


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """`did you mean 'x'?` for the closest choice, or None."""
    return _suggest(word, tuple(sorted(set(choices))))


@lru_cache(maxsize=4096)
def _suggest(word: str, choices: tuple[str, ...]) -> str | None:
    # The same typo in a thousand environments is one search.
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


MAX_ERRORS = 10_000  # then compile stops looking: time and memory stay bounded on hostile input
TOO_MANY = f"too many errors: stopped looking after {MAX_ERRORS:,}"


class Collector:
    """Gathers diagnostics so that every stage reports all problems at once (up to MAX_ERRORS). Warnings beyond
    MAX_ERRORS are counted, not kept: memory stays bounded and the count printed is the true one."""

    def __init__(self) -> None:
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.unstored_warnings = 0

    def error(self, location: Location | None, message: str, hint: str | None = None, *,
              notes: tuple[tuple[str, Location | None], ...] = ()) -> None:
        self.errors.append(Diagnostic(location, message, hint, notes=notes))
        if len(self.errors) >= MAX_ERRORS:
            raise ConfigError([*_unique(self.errors), Diagnostic(None, TOO_MANY, "fix these first")],
                              _unique(self.warnings), self.unstored_warnings)

    def warn(self, location: Location | None, message: str, hint: str | None = None) -> None:
        if len(self.warnings) < MAX_ERRORS:
            self.warnings.append(Diagnostic(location, message, hint, severity="warning"))
        else:
            self.unstored_warnings += 1

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConfigError(_unique(self.errors), _unique(self.warnings), self.unstored_warnings)


def _unique(items: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for d in items:
        key = (d.sort_key(), d.hint, d.severity)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
