"""YAML text -> plain documents with a Location for every key and value; includes; duplicate keys.

This is the only module that imports yaml. It uses libyaml (CSafeLoader) when present.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Union

import yaml

from . import reads
from .errors import Collector, ConfigError, Location, read_regular

Key = Union[str, int]
NodePath = tuple[Key, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_YAML_TAGS = "tag:yaml.org,2002:"
# The scalars YAML's core schema reads (as plain values do, or written out: `!!str 3.10`); a date is read, and then
# refused with the field's type.
_SCALAR_TAGS = frozenset(_YAML_TAGS + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_MAX_DEPTH = 64
_DEPTH_HINT = "no dockwright key nests that deep: look for an alias or a bracket that does not end"
_MAX_NODES = 2_000_000
# Values that aliases may add (each use of an anchor adds a copy of its value): far more than any real
# project repeats, far less than a "billion laughs" document, which is refused before it is expanded.
MAX_ALIAS_VALUES = 100_000
# Sections whose entries are named things that included files may add to.
NAMED_SECTIONS = ("integrations", "environments", "pipelines", "builders")
# The top-level keys an included file may hold; every other key of the project schema is project-only (an
# error in an included file). tests/test_merge.py holds the two sets to the schema's keys.
INCLUDE_KEYS = ("version", "include", *NAMED_SECTIONS)
PROJECT_ONLY_KEYS = frozenset(("project", "description", "output", "registry", "runner", "server", "default_builder",
                               "platforms", "zenml"))
PROJECT_FILE = "dockwright.yaml"


@dataclass
class Located:
    """Plain data plus where each of its keys and values stands in the sources."""

    data: Any
    keys: dict[NodePath, Location] = field(default_factory=dict)
    values: dict[NodePath, Location] = field(default_factory=dict)
    # The source text of scalars that YAML read as something else than a string (`3.10`, `yes`, `1`), to show
    # users how YAML read what they wrote.
    raw: dict[NodePath, str] = field(default_factory=dict)

    def at(self, path: NodePath) -> Location | None:
        """Where the value at path is written (or, failing that, its nearest ancestor)."""
        while path:
            loc = self.values.get(path)
            if loc is not None:
                return loc
            path = path[:-1]
        return self.values.get(())

    def key_at(self, path: NodePath) -> Location | None:
        """Where the key of path is written (or the value, for list items)."""
        return self.keys.get(path) or self.at(path)


@dataclass
class Source:
    """The whole project as loaded: merged data from the project file and its includes."""

    root: Path
    main: Path
    files: list[Path]
    doc: Located
    # For each top-level key or named entry (("environments", "base")), the file it came from.
    origin: dict[NodePath, Path]

    def rel(self, path: Path) -> str:
        """A project file's path relative to the root, POSIX style (used in outputs)."""
        return PurePosixPath(path.relative_to(self.root).as_posix()).as_posix()


class _Walker:
    """Turns a composed YAML node tree into plain values, recording locations."""

    def __init__(self, file: Path, lines: list[str], loader: Any, out: Located, sink: Collector) -> None:
        self.file = file
        self.lines = lines
        self.loader = loader
        self.out = out
        self.sink = sink
        self.count = 0
        self.active: set[int] = set()
        # Without aliases no node is reached twice: each is dropped once read, so that a large file's node
        # graph and its plain data are not both held in full.
        self.consume = False

    def loc(self, mark: Any) -> Location:
        line = mark.line
        text = self.lines[line] if line < len(self.lines) else ""
        return Location(self.file, line + 1, mark.column + 1, text)

    def walk(self, node: Any, path: NodePath, depth: int = 0) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _TooBig(self.loc(node.start_mark))
        loc = self.out.values[path] = self.loc(node.start_mark)
        if depth > _MAX_DEPTH:
            self.sink.error(loc, f"nesting deeper than {_MAX_DEPTH} levels", _DEPTH_HINT)
            return None
        if type(node) is yaml.ScalarNode:  # the common case first: a scalar contains nothing
            if node.tag == _STR_TAG:  # a string is its own text: no raw entry needed
                return node.value
            return self.scalar(node, path)
        if id(node) in self.active:
            self.sink.error(loc, "recursive alias: a value contains itself")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if node.tag not in (_SEQ_TAG, _MAP_TAG):  # `!foo {a: 1}` is as unreadable as `!foo a`
            self.sink.error(loc, *_tag_problem(node.tag))
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, path + (i,), depth + 1) for i, item in enumerate(self.children(node))]
            return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))

    def children(self, node: Any) -> Any:
        """node's items (or key/value pairs), each let go as soon as it has been read when consuming."""
        items = node.value
        if not self.consume:
            yield from items
            return
        node.value = []
        for i in range(len(items)):
            item, items[i] = items[i], None
            yield item

    def scalar(self, node: Any, path: NodePath) -> Any:
        if node.tag == _STR_TAG:  # the common case: no constructor needed
            return node.value
        if node.tag not in _SCALAR_TAGS:  # `!foo x`, `!!binary ...`, `!!python/...`: nothing is constructed
            if node.tag == _YAML_TAGS + "value":  # a bare `=`, which YAML 1.1 resolves to a "value" key, untagged
                self.sink.error(self.loc(node.start_mark), f"cannot read value '{node.value}'", "quote it to make it a string")
            else:
                self.sink.error(self.loc(node.start_mark), *_tag_problem(node.tag))
            return None
        self.out.raw[path] = node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.sink.error(self.loc(node.start_mark), f"cannot read value: {getattr(exc, 'problem', exc)}")
        except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise KeyError, IndexError, ...
            # e.g. `2001-13-45` looks like a date to YAML but is none; `!!int abc`; `!!bool`.
            self.sink.error(self.loc(node.start_mark), f"cannot read value '{node.value}' as {_tag_word(node.tag)}"
                            f" ({exc})", "quote it to make it a string")
        return None

    def key_text(self, node: Any) -> str | None:
        if type(node) is yaml.ScalarNode:
            return str(node.value)
        if not isinstance(node, yaml.ScalarNode):
            self.sink.error(self.loc(node.start_mark), "a key must be a plain string, not a list or mapping")
            return None
        # Keys are names: `on:`, `3.10:` or `null:` mean the text the user wrote.
        return str(node.value)

    def mapping(self, node: Any, path: NodePath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Location] = {}
        merged: set[str] = set()
        keys, lines, file, n_lines = self.out.keys, self.lines, self.file, len(self.lines)
        for key_node, value_node in self.children(node):
            if key_node.tag == _MERGE_TAG:
                self.merge(value_node, path, depth, result, merged)
                continue
            key = self.key_text(key_node)
            if key is None:
                continue
            mark = key_node.start_mark
            line = mark.line
            key_loc = Location(file, line + 1, mark.column + 1, lines[line] if line < n_lines else "")
            if key in first_seen:
                self.sink.error(
                    key_loc,
                    f"duplicate key '{key}'{_where(path)}",
                    f"first defined at line {first_seen[key].line}; remove one of them",
                )
                continue
            first_seen[key] = key_loc
            if merged:
                merged.discard(key)
            key_path = path + (key,)
            keys[key_path] = key_loc
            result[key] = self.walk(value_node, key_path, depth + 1)
        return result

    def merge(self, value_node: Any, path: NodePath, depth: int, result: dict[str, Any], merged: set[str]) -> None:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                self.sink.error(self.loc(src.start_mark), "a merge key (<<) takes a mapping or a list of mappings")
                continue
            if id(src) in self.active:
                self.sink.error(self.loc(src.start_mark), "recursive alias: a mapping merges itself")
                continue
            if depth > _MAX_DEPTH:
                self.sink.error(self.loc(src.start_mark), f"nesting deeper than {_MAX_DEPTH} levels", _DEPTH_HINT)
                continue
            self.active.add(id(src))
            try:
                values = self.mapping(src, path, depth + 1)
            finally:
                self.active.discard(id(src))
            for key, value in values.items():
                if key not in result or key in merged:
                    result[key] = value
                    merged.add(key)


def _alias_bomb(root: Any) -> tuple[Any, int, int] | None:
    """(the node whose copies expand most, how often it is used, the expanded size) when aliases would add
    more than MAX_ALIAS_VALUES values; counted on the composed node graph, each subtree once."""
    size: dict[int, int] = {}
    uses: dict[int, int] = {}
    nodes: dict[int, Any] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size.get(id(c), 0) for c in children)  # a cycle (on the path) counts 0
            continue
        uses[key] = uses.get(key, 0) + 1
        if key in size or key in on_path:
            continue
        nodes[key] = node
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))
    total = size[id(root)]
    if total - len(size) <= MAX_ALIAS_VALUES:
        return None
    worst = max((k for k in size if uses[k] > 1), key=lambda k: (size[k] * (uses[k] - 1), -nodes[k].start_mark.index))
    return nodes[worst], uses[worst] - 1, total


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


class _TooBig(Exception):
    def __init__(self, location: Location) -> None:
        self.location = location


def _tag_problem(tag: str) -> tuple[str, str]:
    """The error for a tag dockwright does not read (a custom one, or a YAML type it has no use for)."""
    shown = f"!!{tag[len(_YAML_TAGS):]}" if tag.startswith(_YAML_TAGS) else tag
    return f"cannot read value: tag '{shown}' is not supported", "write a plain value, list or mapping, without the tag"


def _tag_word(tag: str) -> str:
    return {"tag:yaml.org,2002:timestamp": "a date", "tag:yaml.org,2002:int": "a whole number",
            "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:bool": "a boolean"}.get(tag, f"'{tag}'")


# YAML 1.1 (PyYAML, libyaml) breaks lines at these, so the lines we show must too.
_LINE_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# libyaml's composer recurses in C: past some thousands of nested [ or { it overflows the stack.
_FLOW_OPEN = re.compile(r"[\[{]")


def _flow_depth(text: str) -> int:
    """An upper bound of flow nesting (brackets inside quotes count too; that only errs high)."""
    depth = deepest = 0
    for ch in _FLOW_OPEN.sub("[", text.replace("}", "]")):
        if ch == "[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "]":
            depth = max(depth - 1, 0)
    return deepest


def _where(path: NodePath) -> str:
    if not path:
        return ""
    return " in " + describe(path)


def describe(path: NodePath) -> str:
    """Say in words what the mapping at path is: `environment 'base'`, `step 'train' of pipeline 'p'`."""
    p = [part if not isinstance(part, str) or len(part) <= 64 else part[:24] + "..." for part in path]
    if len(p) >= 2 and p[0] in ("environments", "integrations", "builders", "pipelines"):
        kind = {"environments": "environment", "integrations": "integration",
                "builders": "builder", "pipelines": "pipeline"}[str(p[0])]
        name = p[1]
        if p[0] == "pipelines" and len(p) >= 4 and p[2] == "steps":
            inner = f"step '{p[3]}' of pipeline '{name}'"
            rest = p[4:]
        else:
            inner = f"{kind} '{name}'"
            rest = p[2:]
        if rest:
            return f"'{_dotted(rest)}' of {inner}"
        return inner
    if len(p) == 1:
        return f"'{p[0]}'" if p[0] not in ("runner", "server") else str(p[0])
    if p and p[0] in ("runner", "server"):
        return f"'{_dotted(p[1:])}' of {p[0]}"
    return f"'{_dotted(p)}'"


def _dotted(parts: list[Key]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def read_text(path: Path, sink: Collector, *, at: Location | None = None) -> str | None:
    """A project file as UTF-8 text, or None with a located error."""
    try:
        reads.look(path)
        data = read_regular(path)
        reads.note(path, data)
    except FileNotFoundError:
        sink.error(at, f"file not found: {path.name}")
        return None
    except IsADirectoryError:
        sink.error(at, f"{path.name} is a directory, not a file")
        return None
    except OSError as exc:
        sink.error(at, f"cannot read {path.name}: {exc.strerror}")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        start = before.rfind(b"\n") + 1
        col = len(data[start: exc.start].decode("utf-8", "replace")) + 1
        end = data.find(b"\n", exc.start)
        shown = data[start: end if end >= 0 else len(data)].decode("utf-8", "replace")
        sink.error(
            Location(path, line, col, shown),
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            "save the file as UTF-8",
        )
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def parse(text: str, file: Path, sink: Collector) -> Located:
    """One YAML document -> Located; problems go to sink."""
    lines = _LINE_BREAKS.split(text)
    out = Located(data=None)
    # Deeply nested flow collections go to the pure-Python parser, whose recursion Python can stop.
    loader = _Loader(text) if text.count("[") + text.count("{") < 500 or _flow_depth(text) < 500 \
        else yaml.SafeLoader(text)
    try:
        node = _single_node(loader, file, lines, sink)
        if node is None:
            return out
        bomb = _alias_bomb(node) if "*" in text else None  # no alias, no bomb
        if bomb is not None:
            anchor, uses, total = bomb
            mark = anchor.start_mark
            sink.error(Location(file, mark.line + 1, mark.column + 1, lines[mark.line] if mark.line < len(lines) else ""),
                       f"document too large: aliases expand it to {total:,} values, more than the "
                       f"{MAX_ALIAS_VALUES:,} aliases may add",
                       f"this value is used {uses:,} time{'s' if uses != 1 else ''} through aliases; write it out where it is "
                       "needed")
            return out
        walker = _Walker(file, lines, loader, out, sink)
        walker.consume = "*" not in text
        try:
            out.data = walker.walk(node, ())
        except _TooBig as big:
            sink.error(big.location, "document too large: aliases expand to more than 2,000,000 values")
            out.data = None
        return out
    finally:
        loader.dispose()


def _single_node(loader: Any, file: Path, lines: list[str], sink: Collector) -> Any:
    """The document's root node; None for an empty document, or with an error in sink when YAML cannot read it."""
    first = Location(file, 1, 1, lines[0] if lines else "")
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        _syntax_error(exc, file, lines, sink)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: at its place, by its code point
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        kind = " (a control character)" if code < 0x20 or 0x7f <= code < 0xa0 else ""
        sink.error(_at_offset(file, lines, exc.position), f"YAML does not allow the character U+{code:04X}{kind} in a "
                   "file", f"remove it; in a double-quoted string, write it as an escape, like \\x{code:02x}"
                   if code < 0x100 else "remove it")
    except yaml.YAMLError as exc:
        sink.error(first, f"YAML error: {exc}")
    except RecursionError:
        sink.error(first, "nesting too deep to read", f"dockwright reads at most {_MAX_DEPTH} levels")
    return None


def _at_offset(file: Path, lines: list[str], offset: int) -> Location:
    """The location of the character at offset in the text lines were split from (at line breaks only)."""
    for number, line in enumerate(lines, 1):
        if offset <= len(line):
            return Location(file, number, offset + 1, line)
        offset -= len(line) + 1
    return Location(file, max(len(lines), 1), 1, lines[-1] if lines else "")


def _syntax_error(exc: yaml.MarkedYAMLError, file: Path, lines: list[str], sink: Collector) -> None:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line if mark else 0
    col = mark.column if mark else 0
    src = lines[line] if line < len(lines) else ""
    problem = exc.problem or "invalid YAML"
    notes: tuple[tuple[str, Location | None], ...] = ()
    if exc.context and "expected a single document" in exc.context:
        problem = "more than one YAML document ('---') in one file"
    elif exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        cm = exc.context_mark
        ctx_src = lines[cm.line] if cm.line < len(lines) else ""
        notes = ((exc.context, Location(file, cm.line + 1, cm.column + 1, ctx_src)),)
    sink.error(Location(file, line + 1, col + 1, src), f"YAML syntax error: {problem}",
               _tab_hint(src, col) or _syntax_hint(problem), notes=notes)


# What to do about libyaml's most common complaints (its words, matched at their start).
_SYNTAX_HINTS = (
    ("did not find expected key", "check this line's indentation: the keys of one mapping start in one column"),
    ("mapping values are not allowed", "check this line's indentation, or quote a value that holds ': '"),
    ("did not find expected ',' or '}'", "close the { ... } that the note points at, or quote a value that holds "
                                         "',', '{' or '}'"),
    ("did not find expected ',' or ']'", "close the [ ... ] that the note points at, or quote a value that holds "
                                         "',', '[' or ']'"),
    ("found unexpected end of stream", "close the quote, bracket or brace that starts where the note points"),
    ("did not find expected '-' indicator", "check this line's indentation: the items of one list start in one "
                                            "column"),
)


def _syntax_hint(problem: str) -> str | None:
    return next((hint for start, hint in _SYNTAX_HINTS if problem.startswith(start)), None)


def _tab_hint(src: str, col: int) -> str | None:
    """YAML refuses tabs where it reads indentation; libyaml says only 'found character that cannot start any
    token'."""
    indent = src[:len(src) - len(src.lstrip(" \t"))]
    if "\t" in indent or src[col:col + 1] == "\t":
        return "YAML indents with spaces only: replace the tab(s) on this line with spaces"
    return None


def parse_resource(text: str) -> Any:
    """Plain YAML for the tool's own files (schemas): no locations needed."""
    return yaml.load(text, Loader=_Loader)


def scalar(text: str, *, plain: bool = False) -> str:
    """text as one YAML scalar on one line that reads back as exactly that string, written by PyYAML's emitter:
    double-quoted (every character that is not printable, or breaks a line, escaped), or with plain, unquoted
    when YAML reads it unquoted as that string and it starts with a letter (`churn-model`, not `2046`, `1e3`,
    `yes` or `null`)."""
    if plain:
        shown = yaml.safe_dump([text], default_flow_style=True, allow_unicode=True, width=_ONE_LINE)[1:-2]
        if shown[:1].isalpha() and "\n" not in shown:  # a letter first: no number in any YAML version
            return shown
    return yaml.safe_dump([text], default_flow_style=True, default_style='"', allow_unicode=True, width=_ONE_LINE)[1:-2]


_ONE_LINE = 2**31 - 1  # no folding: every scalar stays on its line


def find_project_file(start: Path) -> Path | None:
    candidate = start / PROJECT_FILE
    return candidate if candidate.is_file() else None


def load_project(main: Path, *, text: str | None = None) -> Source:
    """Load the project file and everything it includes; raise ConfigError listing every problem.

    text: the project file's text when it is not on disk yet (`dockwright init` checks what it will write)."""
    main = main.absolute()
    root = main.parent
    given = text
    sink = Collector()
    merged = Located(data={})
    origin: dict[NodePath, Path] = {}
    files: list[Path] = []
    seen: set[Path] = set()

    def load_file(path: Path, *, at: Location | None, is_main: bool) -> None:
        real = path.resolve()
        if real in seen:
            return
        seen.add(real)
        files.append(path)
        text = given if is_main and given is not None else read_text(path, sink, at=at)
        if text is None:
            return
        before = len(sink.errors)
        doc = parse(text, path, sink)
        if doc.data is None and len(sink.errors) == before:  # empty, not unreadable: each file says so
            sink.error(Location(path, 1, 1, _LINE_BREAKS.split(text)[0]), "file is empty",
                       "start with 'version: 1'" if is_main else "add environments, pipelines, ...")
            return
        if doc.data is None:
            return
        if not isinstance(doc.data, dict):
            sink.error(doc.values.get(()), "the file must be a mapping of keys (like 'version: 1'), not a "
                       + _kind(doc.data))
            return
        includes = _include_patterns(doc, sink)
        if is_main:
            merged.values[()] = doc.values.get(()) or Location(path, 1, 1, _LINE_BREAKS.split(text)[0])
        _merge_into(merged, origin, doc, path, is_main=is_main, sink=sink)
        for pattern, loc in includes:
            _expand_include(pattern, loc, path.parent, root, sink, load_file, main)

    load_file(main, at=None, is_main=True)
    sink.raise_if_errors()
    return Source(root=root, main=main, files=files, doc=merged, origin=origin)


def _include_patterns(doc: Located, sink: Collector) -> list[tuple[str, Location | None]]:
    inc = doc.data.get("include")
    if inc is None:
        return []
    if isinstance(inc, str):
        return [(inc, doc.at(("include",)))]
    if not isinstance(inc, list):
        sink.error(doc.at(("include",)), "'include' must be a list of file patterns, like [envs/*.yaml]")
        return []
    out = []
    for i, item in enumerate(inc):
        if not isinstance(item, str) or not item:
            sink.error(doc.at(("include", i)), "each 'include' entry must be a file pattern string")
            continue
        out.append((item, doc.at(("include", i))))
    return out


def _expand_include(pattern: str, loc: Location | None, base: Path, root: Path, sink: Collector,
                    load_file: Any, main: Path) -> None:
    if Path(pattern).is_absolute():
        sink.error(loc, f"include '{pattern}' is an absolute path", "use a path relative to this file")
        return
    matches = sorted(glob.glob(pattern, root_dir=base, recursive=True))
    files = [base / m for m in matches if (base / m).is_file()]
    reads.note_glob(base, pattern, matches)
    if not files:
        sink.error(loc, f"include '{pattern}' matches no file", "check the pattern; it is relative to this file")
        return
    for f in files:
        try:
            f.resolve().relative_to(root.resolve())
        except ValueError:
            sink.error(loc, _outside(pattern, f, root), "keep included files under the directory of dockwright.yaml")
            return
    for f in files:
        if f.resolve() == main.resolve():
            continue
        load_file(Path(f), at=loc, is_main=False)


def _outside(pattern: str, match: Path, root: Path) -> str:
    """Why an include's match is outside the project: its path says so, or a symbolic link on the way leads there."""
    rel = os.path.relpath(os.path.normpath(match), root)
    if rel == ".." or rel.startswith("../"):
        return f"include '{pattern}' reaches outside the project directory"
    through = "leads outside the project directory through a symbolic link"
    if glob.has_magic(pattern):
        return f"include '{pattern}' matches '{PurePosixPath(Path(rel))}', which {through}"
    return f"include '{pattern}' {through}"


def _merge_into(merged: Located, origin: dict[NodePath, Path], doc: Located, path: Path, *,
                is_main: bool, sink: Collector) -> None:
    if is_main and not merged.data:  # the first file: everything in it is merged as it is, tables and all
        merged.data.update(doc.data)
        for key, value in doc.data.items():
            _note_origin(origin, key, value, path)
        merged.keys.update(doc.keys)
        merged.values.update((p, loc) for p, loc in doc.values.items() if p)
        merged.raw.update(doc.raw)
        return
    for key, value in doc.data.items():
        if not is_main and not _fragment_key(merged, doc, key, value, sink):
            continue
        if key in NAMED_SECTIONS:
            _merge_section(merged, origin, doc, path, key, value, sink)
        elif key in merged.data:
            first = merged.keys.get((key,))
            sink.error(doc.keys.get((key,)), f"'{key}' is defined twice",
                       f"first defined at {_short(first)}" if first else None)
        else:
            merged.data[key] = value
            origin[(key,)] = path
            _copy_locations(merged, doc, (key,))


def _note_origin(origin: dict[NodePath, Path], key: str, value: Any, path: Path) -> None:
    origin[(key,)] = path
    if key in NAMED_SECTIONS and isinstance(value, dict):
        for name in value:
            origin[(key, name)] = path


def _fragment_key(merged: Located, doc: Located, key: str, value: Any, sink: Collector) -> bool:
    """Whether an included file's top-level key is merged: project-only keys are errors, `include` is read
    elsewhere, and `version` only has to agree with the project's."""
    if key in PROJECT_ONLY_KEYS:
        sink.error(doc.keys.get((key,)), f"'{key}' can only be set in the project file, not in an included file",
                   f"move it to {PROJECT_FILE}")
        return False
    project = merged.data.get("version")
    if key == "version" and "version" in merged.data and (type(value) is not type(project) or value != project):
        sink.error(doc.at((key,)), f"included file says version {_yaml_word(value)} but the project says "
                   f"{_yaml_word(project)}", f"write version: {_yaml_word(project)}, or leave version out of it")
    return key not in ("include", "version")


def _merge_section(merged: Located, origin: dict[NodePath, Path], doc: Located, path: Path, key: str, value: Any,
                   sink: Collector) -> None:
    """A named section (`environments:`, ...): its entries join the project's, each defined once."""
    data = merged.data
    if value is None:  # an empty section (`environments:`) adds nothing
        return
    if not isinstance(value, dict):
        sink.error(doc.at((key,)), f"'{key}' must be a mapping of names to entries, not {_a(_kind(value))}",
                   f"write {key}: {{name: {{...}}}}, or remove it")
        return
    if key in data and data[key] is None:  # the project file's section is empty
        data[key] = {}
    if key not in data:
        data[key] = value
        _note_origin(origin, key, value, path)
        _copy_locations(merged, doc, (key,))
        return
    if not isinstance(data[key], dict):
        first = merged.keys.get((key,))
        sink.error(doc.keys.get((key,)), f"'{key}' is defined twice",
                   f"first defined at {_short(first)}" if first else None)
        return
    for name, entry in value.items():
        if name in data[key]:
            first = merged.keys.get((key, name))
            where = f"{_short(first)}" if first else "another file"
            sink.error(doc.keys.get((key, name)), f"{describe((key, name))} is defined twice", f"first defined at {where}")
            continue
        data[key][name] = entry
        origin[(key, name)] = path
        _copy_locations(merged, doc, (key, name))


def _copy_locations(merged: Located, doc: Located, prefix: NodePath) -> None:
    groups = _grouped(doc)
    for table_name in ("keys", "values", "raw"):
        src = getattr(doc, table_name)
        dst = getattr(merged, table_name)
        for p in groups.get(prefix, ()):
            if p in src:
                dst[p] = src[p]
    if len(prefix) == 2 and prefix[:1] not in merged.keys:
        merged.keys[prefix[:1]] = doc.keys[prefix[:1]]
        merged.values[prefix[:1]] = doc.values[prefix[:1]]


_GROUPS: dict[int, tuple[Located, dict[NodePath, list[NodePath]]]] = {}


def _grouped(doc: Located) -> dict[NodePath, list[NodePath]]:
    """Every path of doc under its one- and two-part prefixes (computed once per document)."""
    cached = _GROUPS.get(id(doc))
    if cached is not None and cached[0] is doc:
        return cached[1]
    groups: dict[NodePath, list[NodePath]] = {}
    for p in doc.values.keys() | doc.keys.keys():
        if p:
            groups.setdefault(p[:1], []).append(p)
        if len(p) >= 2:
            groups.setdefault(p[:2], []).append(p)
    _GROUPS.clear()
    _GROUPS[id(doc)] = (doc, groups)
    return groups


def _yaml_word(value: Any) -> str:
    """A scalar as YAML spells it (true, null, 'text'), never as Python does (True, None)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value) if isinstance(value, str) else str(value)


def _short(loc: Location | None) -> str:
    return f"{loc.display_path()}:{loc.line}" if loc else "?"


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")


__all__ = ["ConfigError", "Located", "Source", "load_project", "parse", "parse_resource", "read_text",
           "describe", "find_project_file", "PROJECT_FILE"]
