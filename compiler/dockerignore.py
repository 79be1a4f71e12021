""".dockerignore matching, as the Docker CLI does it (moby's ignorefile reader and patternmatcher; the
rules of docker-py's PatternMatcher, but case-sensitive as on Linux) (no I/O): used by compile, to warn
when .dockerignore leaves out what a generated Dockerfile copies, and by the builders' build context."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

FILE = ".dockerignore"


def parse(text: str) -> list[str]:
    """The patterns of a .dockerignore file as the Docker CLI reads them: a UTF-8 BOM dropped, one pattern
    a line ("\n" ends a line), a comment only with `#` in its first column, blanks left out, the rest
    stripped of white space."""
    lines = text.removeprefix("\ufeff").split("\n")
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


def _translate(pattern: str) -> str:
    """A shell pattern as a regular expression (docker-py's translate: `**` spans folders, `*` and
    `?` do not cross `/`, `[...]` is a class)."""
    i, n = 0, len(pattern)
    out = []
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            piece, i = _stars(pattern, i)
        elif c == "[":
            piece, i = _class(pattern, i)
        else:
            piece = "[^/]" if c == "?" else re.escape(c)
        out.append(piece)
    return "".join(out)


def _stars(pattern: str, i: int) -> tuple[str, int]:
    """The expression for the `*` before i, and where the pattern goes on: `**` (with a `/` after it)
    spans folders, one `*` stays in its folder."""
    n = len(pattern)
    if i >= n or pattern[i] != "*":
        return "[^/]*", i
    i += 1
    if i < n and pattern[i] == "/":
        i += 1
    return (".*" if i >= n else "(.*/)?"), i


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The expression for the `[` before i, and where the pattern goes on: a class up to its `]` (a `]`
    first is in the class; `!` negates), or a literal `[` when no `]` closes it."""
    n = len(pattern)
    j = i
    if j < n and pattern[j] == "!":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    j = pattern.find("]", j)
    if j < 0:
        return "\\[", i
    stuff = pattern[i:j].replace("\\", "\\\\")
    if stuff[0] == "!":
        stuff = "^" + stuff[1:]
    elif stuff[0] == "^":
        stuff = "\\" + stuff
    return f"[{stuff}]", j + 1


@dataclass
class Pattern:
    text: str
    exclusion: bool = field(init=False)
    dirs: list[str] = field(init=False)
    cleaned_pattern: str = field(init=False)
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        text = self.text
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:]
        # Leading and trailing slashes and `.` parts do not count; `..` removes the part before it.
        parts = _split(text.strip())
        i = 0
        while i < len(parts):
            if parts[i] == "..":
                del parts[i]
                if i > 0:
                    del parts[i - 1]
                    i -= 1
            else:
                i += 1
        self.dirs = parts
        self.cleaned_pattern = "/".join(parts)
        # Case-sensitive, as the Docker CLI on Linux (docker-py lowercases both sides).
        self._regex = re.compile(_translate(self.cleaned_pattern), re.DOTALL)

    def match(self, path: str) -> bool:
        return self._regex.fullmatch(path) is not None


class Matcher:
    """matches(path) says whether .dockerignore leaves path (relative to the context, `/`-separated) out."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        self.errors: list[str] = []  # patterns that are no valid expression (docker-py fails on them too)
        for text in patterns:
            try:
                pattern = Pattern(text)
            except re.error as exc:
                self.errors.append(f"pattern '{text}' is invalid: {exc}")
                continue
            if pattern.dirs:
                self.patterns.append(pattern)
        self.patterns.append(Pattern("!" + FILE))

    def matches(self, path: str) -> bool:
        matched = False
        parent = posixpath.dirname(path)
        parent_dirs = _split(parent)
        for pattern in self.patterns:
            hit = pattern.match(path)
            if not hit and parent and len(pattern.dirs) <= len(parent_dirs):
                hit = pattern.match("/".join(parent_dirs[:len(pattern.dirs)]))
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_bring_back(self, folder: str) -> bool:
        """Whether a later `!pattern` may keep something below an excluded folder."""
        return any(p.exclusion and p.cleaned_pattern.startswith(folder) for p in self.patterns)
