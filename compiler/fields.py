"""The environment keys, described once: how each is read, merged, layered and explained.

One row of FIELDS per attribute that `Fragment` (what a declaration says) and `Environment` (the effective,
merged result) share. The merge (`model.inherit`, `model.apply`), the fragment reader (`model._ModelReader`),
the layered image's delta (`plan`) and `dockwright explain` are all driven by this table; tests/test_fields.py
holds the dataclasses, the schema and the tests' strategies to it. Adding a key: the schema, one row here,
the template, and the docs. No I/O; nothing here imports the rest of the compiler.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Callable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


class Merge(Enum):
    """How a child (extends, integrations, step settings) combines with what it starts from."""

    CHILD_WINS = "child wins"  # a scalar: the child's value, if it sets one
    BY_KEY = "merge by key"  # a mapping: the child's keys win; null removes an inherited key
    BY_NAME = "merge by normalised name"  # entries named by `identity`: the child's specifier wins
    UNION = "union by name"  # entries named by `identity`: parent's and child's; the child's pin wins
    APPEND = "append"  # the parent's entries, then the child's new ones; an exact repeat is kept once


class Layer(Enum):
    """What a layered image (built FROM its parent environment's image) says of a field."""

    NONE = "says nothing in a Dockerfile"
    OWN = "its own rule in plan.py (base: FROM; user: USER and ownership)"
    PARENT = "nothing: the parent image has it (the field must match, see `match`)"
    ALWAYS = "repeated in every image"
    WITH_INSTALL = "repeated where the layer installs Python packages"
    WITH_STEPS = "repeated where the layer runs a step (apt, installs, run)"
    CHANGED = "the whole value, when it differs from the parent's"
    WITH_ENTRYPOINT = "the whole value, when it or the entrypoint differs from the parent's"
    NEW = "only the entries the parent image does not have"


class Show(Enum):
    """How `dockwright explain` shows a field."""

    HIDDEN = "not shown"
    VALUE = "the value"
    BASE = "the image, or the custom Dockerfile and its context"
    WORDS = "the words joined by spaces, when there are any"
    JSON = "a JSON list"
    ENTRIES = "a heading, then one entry a line (by name where merged by name)"
    PAIRS = "a heading, then one KEY value a line, by key"


class Read(Enum):
    """How the fragment reader turns the YAML value into the Fragment attribute."""

    BASE = "parent_image, python or dockerfile (+ context): a Base"
    TEXT = "a scalar, as written"
    WORDS = "a list, as a tuple"
    NAMES = "a list of package names, normalised, sorted, once each"
    MAP = "a mapping; a null value removes"
    LIST = "a list of entries, each normalised by `normalise`"
    COPY = "a list of paths or {from, to}: Copy entries"
    FLAG = "true or false"
    SECRETS = "a mapping of secret ids to {env: NAME} or {file: path}, kept as 'env NAME' or 'file path'; null removes"


@cache
def requirement_name(text: str) -> str:
    return str(canonicalize_name(Requirement(text).name))


def apt_name(spec: str) -> str:
    return spec.split("=", 1)[0].split(":", 1)[0]


def cert_path(path: str) -> str:
    """A certificate's project-relative path, normalised: `./certs/a.pem` and `certs/a.pem` are one file."""
    return posixpath.normpath(path)


def package_path(path: str) -> str:
    """A local package's directory, normalised: `./libs/x/` and `libs/x` are one package, `./` is `.`."""
    return posixpath.normpath(path)


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Field:
    name: str  # the attribute of Fragment and Environment
    label: str  # how explain names it
    keys: tuple[str, ...]  # the YAML keys that set it
    read: Read
    merge: Merge
    layer: Layer
    show: Show
    identity: Callable[[str], str] | None = None  # BY_NAME / UNION: the name two entries share
    normalise: Callable[[str], str] = _same  # LIST: each entry as the model keeps it
    repeat: str | None = None  # what an entry listed twice in one declaration is called (an error); None: allowed
    match: str | None = None  # a layered child must have the parent's value; else why not ({child}, {parent},
    #                           {name}: the parent environment's name)
    files: str | None = None  # the field naming files whose entries merge in first (requirements_files)

    @property
    def mapping(self) -> bool:
        """The Environment keeps it as a mapping (name or key -> entry)."""
        return self.merge in (Merge.BY_KEY, Merge.BY_NAME, Merge.UNION)


# In the order `dockwright explain` shows them.
FIELDS: tuple[Field, ...] = (
    Field("base", "base", ("parent_image", "python", "dockerfile", "context"), Read.BASE, Merge.CHILD_WINS,
          Layer.OWN, Show.BASE, match="another base than '{name}'"),
    Field("installer", "installer", ("installer",), Read.TEXT, Merge.CHILD_WINS, Layer.ALWAYS, Show.VALUE,
          match="installer {child}, not {parent} as in '{name}'"),
    Field("installer_args", "installer_args", ("installer_args",), Read.WORDS, Merge.CHILD_WINS, Layer.ALWAYS,
          Show.WORDS),
    Field("index_url", "index_url", ("index_url",), Read.TEXT, Merge.CHILD_WINS, Layer.WITH_INSTALL, Show.VALUE),
    Field("user", "user", ("user",), Read.TEXT, Merge.CHILD_WINS, Layer.OWN, Show.VALUE,
          match="user {child}, not {parent} as in '{name}'"),
    Field("workdir", "workdir", ("workdir",), Read.TEXT, Merge.CHILD_WINS, Layer.CHANGED, Show.VALUE),
    Field("entrypoint", "entrypoint", ("entrypoint",), Read.WORDS, Merge.CHILD_WINS, Layer.CHANGED, Show.JSON),
    Field("cmd", "cmd", ("cmd",), Read.WORDS, Merge.CHILD_WINS, Layer.WITH_ENTRYPOINT, Show.JSON),
    Field("apt", "apt_packages", ("apt_packages",), Read.LIST, Merge.UNION, Layer.NEW, Show.ENTRIES,
          identity=apt_name, repeat="Debian package"),
    # The CA bundle is made before the parent's installs: a layered child cannot add to it.
    Field("certificates", "certificates", ("certificates",), Read.LIST, Merge.UNION, Layer.PARENT, Show.ENTRIES,
          identity=_same, normalise=cert_path, repeat="certificate", match="other certificates than '{name}'"),
    Field("requirements", "requirements", ("requirements",), Read.LIST, Merge.BY_NAME, Layer.CHANGED, Show.ENTRIES,
          identity=requirement_name, repeat="requirement", files="requirements_files"),
    Field("env", "env", ("env",), Read.MAP, Merge.BY_KEY, Layer.NEW, Show.PAIRS),
    Field("build_args", "build_args", ("build_args",), Read.MAP, Merge.BY_KEY, Layer.WITH_STEPS, Show.PAIRS),
    Field("labels", "labels", ("labels",), Read.MAP, Merge.BY_KEY, Layer.NEW, Show.PAIRS),
    Field("extra_index_urls", "extra_index_urls", ("extra_index_urls",), Read.LIST, Merge.APPEND,
          Layer.WITH_INSTALL, Show.ENTRIES, repeat="extra index URL"),
    # Merged into requirements (files first, then inline ones) by model.apply.
    Field("requirements_files", "requirements_files", ("requirements_files",), Read.LIST, Merge.APPEND, Layer.NONE,
          Show.ENTRIES),
    Field("integrations", "integrations", ("integrations",), Read.LIST, Merge.APPEND, Layer.NONE, Show.ENTRIES),
    Field("run", "run", ("run",), Read.LIST, Merge.APPEND, Layer.NEW, Show.ENTRIES),
    Field("checks", "checks", ("checks",), Read.LIST, Merge.APPEND, Layer.NONE, Show.ENTRIES),
    Field("copy", "copy", ("copy",), Read.COPY, Merge.APPEND, Layer.NEW, Show.ENTRIES),
    Field("local_packages", "local_packages", ("local_packages",), Read.LIST, Merge.APPEND, Layer.NEW, Show.ENTRIES,
          normalise=package_path, repeat="local package"),
    # RUN --mount=type=cache on the apt and install steps (cache mounts: BuildKit or buildah).
    Field("cache_mounts", "cache_mounts", ("cache_mounts",), Read.FLAG, Merge.CHILD_WINS, Layer.WITH_STEPS,
          Show.VALUE),
    # RUN --mount=type=secret on the Python install steps: the declaration (id, where the builder reads it),
    # never the value.
    Field("secrets", "secrets", ("secrets",), Read.SECRETS, Merge.BY_KEY, Layer.WITH_INSTALL, Show.PAIRS),
    # Which locked packages get their own layer (None: the size rule): read by the lock's pins, not the template.
    Field("heavy_packages", "heavy_packages", ("heavy_packages",), Read.NAMES, Merge.CHILD_WINS, Layer.NONE,
          Show.HIDDEN),
)

BY_NAME = {f.name: f for f in FIELDS}

__all__ = ["FIELDS", "BY_NAME", "Field", "Layer", "Merge", "Read", "Show", "apt_name", "cert_path",
           "package_path", "requirement_name"]
