"""Cerberus schemas from schemas/, a validator per document, every error mapped to a located Diagnostic.

This is the only module that imports cerberus. Checks here are syntactic (no file system):
values that reach a Dockerfile are either validated to a safe pattern here or quoted in render.
A check's finding travels as data: a Problem in the info of Cerberus's ValidationError.
"""

from __future__ import annotations

import bisect
import datetime
import posixpath
import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Callable, cast
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from . import engine_url
from .credentials import (IN_DOCKERFILE, PROXY_CREDENTIAL_HINT, REQUIREMENTS_WRITTEN, RUNTIME_SECRET_HINT,
                          credentials_hint, masked_credentials, proxy_secret, shown_proxy)
from .errors import Collector, Location, suggest
from .load import Located, NodePath, describe, parse_resource
from .resources import data_dir


@dataclass(frozen=True, slots=True)
class Problem:
    """What a check found wrong with a value. The message is `subject`, then where the value is
    (" in environment 'base'", added when it is reported), then `rest`; `key` names the key inside the
    checked mapping that the problem is about (the error points at it)."""

    subject: str
    hint: str | None = None
    rest: str = ""
    key: str | None = None

    def message(self, where: str = "") -> str:
        return f"{self.subject}{where}{self.rest}"


MAX_NAME = 63  # names become image names, directories and tags
MAX_PROJECT = 64
NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*\Z")
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9-]*\Z")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?\Z")
PACKAGE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")  # a Python distribution name
APT_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:_-]+)?\Z")
USER_RE = re.compile(r"^(?:[a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})\Z")
PYTHON_RE = re.compile(r"^3\.[0-9]{1,2}(?:\.[0-9]{1,2})?\Z")
_OTHER_PYTHON_RE = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}(?:\.[0-9]{1,2})?")  # 2.7, 4.0: a version, not one dockwright knows
SAFE_PATH_RE = re.compile(r"^[\w.@+=,~/ -]+\Z")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
SECRET_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")  # a word of --secret id=X and --mount=...,id=X
SECRET_FILE_RE = re.compile(r"^[^\x00-\x1f\x7f,\"'\\]+\Z")  # a path of the build machine: no comma (it ends a --secret field)
# Control characters (C0, DEL, C1) and every character str.splitlines() ends a line at (pip's
# requirements parser splits lines with it): none may be in a value written on one line of a text file.
LINE_BREAK_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
URL_RE = re.compile(r"^(?:tcp|unix|ssh|npipe|http|https)://[^\s'\"\\]+\Z")
INDEX_URL_RE = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+\Z")  # RFC 3986 characters, ASCII
NO_PROXY_RE = re.compile(r"^[A-Za-z0-9._:*/,\[\]% -]*\Z")
_REF_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")

_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(rf"^{_COMPONENT}\Z")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}\Z")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z")


def _valid_name(name: str) -> bool:
    """Docker's reference grammar: the first part is a registry host only if it has '.' or ':' or is
    localhost (and only a host may hold capitals); every path component is lowercase."""
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _DOMAIN_RE.match(parts[0]):
            return False
        parts = parts[1:]
    return all(_COMPONENT_RE.match(p) for p in parts)


def valid_image(ref: str) -> bool:
    name, at, digest = ref.partition("@")
    if at and not _DIGEST_RE.fullmatch(digest):  # "image@" names no digest
        return False
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG_RE.fullmatch(tag):
            return False
    return _valid_name(name)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "empty (null)"
    return f"a {type(value).__name__}"


def check_path(value: str, *, what: str) -> Problem | None:
    """What is wrong when value is not a relative path that stays inside the project."""
    if not value.strip():
        return Problem(f"{what} is empty", "give a path relative to the project directory")
    if CONTROL_RE.search(value) or "\\" in value:
        return Problem(f"{what} '{_show(value)}' contains a control character or backslash", "use plain '/' paths")
    if value.startswith("/"):
        return Problem(f"{what} '{value}' is absolute", "give a path relative to the project directory")
    if any(part.startswith("-") for part in value.split("/")):
        return Problem(f"{what} '{value}' has a part starting with '-'", "rename it; such names read as options")
    if not SAFE_PATH_RE.match(value):
        bad = next(c for c in value if not SAFE_PATH_RE.match(c))
        return Problem(f"{what} '{value}' contains '{bad}'", "use letters, digits and . _ - + @ = , ~ / and spaces")
    norm = posixpath.normpath(value)
    if norm == ".." or norm.startswith("../"):
        return Problem(f"{what} '{value}' points outside the project directory",
                       "keep it under the directory of dockwright.yaml")
    return None


@cache
def _requirement_problem(value: str) -> str | None:
    try:
        Requirement(value)
    except InvalidRequirement as exc:
        return str(exc).split("\n")[0]
    return None


# The CPython minors `python:` may name (python:<minor>-slim images); patch versions of them are fine, too.
PYTHON_VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


def python_problem(text: str, *, quoted: bool) -> Problem | None:
    """What is wrong unless text names a CPython minor of PYTHON_VERSIONS, like 3.11 or 3.11.9."""
    if PYTHON_RE.match(text) and ".".join(text.split(".")[:2]) in PYTHON_VERSIONS:
        return None
    known = f"versions {PYTHON_VERSIONS[0]} to {PYTHON_VERSIONS[-1]}"
    if not quoted:  # YAML read a number: 3.1 may have been meant as 3.10
        return Problem(f"invalid Python version {text}: YAML reads it as a number",
                       f"dockwright knows {known}; write the version in quotes, like python: \"3.10\"")
    if PYTHON_RE.match(text) or _OTHER_PYTHON_RE.fullmatch(text):
        return Problem(f"unknown Python version '{text}'", f"dockwright knows {known}")
    return Problem(f"invalid Python version '{_show(text)}'", "write it like \"3.11\"")


LOCAL_HINT = "list the package directory under `local_packages:` instead"
_PIP_OPTION_RE = re.compile(r"(?:^|\s)-")  # pip reads any word starting with '-' as an option
_PIP_COMMENT_RE = re.compile(r"(?:^|\s)#")  # ... and ' #' as the start of a comment


def local_requirement(value: str) -> bool:
    """A requirement that names a local path or a file: URL (`-e .`, `./libs/x`, `pkg @ file:///app/x`)."""
    text = value.strip()
    if re.match(r"(?:-e|--editable)(?:\s|=|\Z)", text) or text.lower().startswith("file:"):
        return True
    if text.startswith((".", "/", "~")):
        return True
    _, at, url = text.partition("@")
    url = url.strip()
    if at and (url.lower().startswith("file:") or url.startswith((".", "/", "~"))):
        return True
    # libs/x or C:\\x: a path, unless it is a requirement (a '/' may be in a URL or a marker's string).
    return ("/" in text or "\\" in text) and _requirement_problem(value) is not None and "://" not in text


def requirement_problem(value: str) -> Problem | None:
    """What is wrong when value is not one PEP 508 requirement that pip reads back as exactly that line of
    requirements.txt (no line break, option, comment or continuation), without credentials or local paths."""
    masked = masked_credentials(value)
    shown = _show(masked or value)
    one = "write one PEP 508 requirement, like 'pandas==2.2.2'; options go in installer_args"
    if LINE_BREAK_RE.search(value):  # before the path test: a line break is the problem whatever else is there
        return Problem(f"invalid requirement '{shown}'", one)
    if value.rstrip().endswith("\\"):
        return Problem(f"invalid requirement '{shown}'", "remove the trailing '\\'",
                       rest=": pip would read the next line as part of it")
    if local_requirement(value):
        return Problem(f"requirement '{shown}'", LOCAL_HINT, rest=" is a local path")
    if value.lstrip().startswith("-"):
        return Problem(f"invalid requirement '{shown}'", one)
    if masked is not None:
        return Problem(f"requirement '{shown}'", credentials_hint(REQUIREMENTS_WRITTEN), rest=" carries credentials")
    detail = _requirement_problem(value)
    if detail is not None:
        return Problem(f"invalid requirement '{value}'", "write it like 'pandas==2.2.2'", rest=f": {detail}")
    if _PIP_OPTION_RE.search(value) or _PIP_COMMENT_RE.search(value):
        return Problem(f"invalid requirement '{shown}'", "remove the ' -' or ' #'",
                       rest=": pip would read part of it as an option or a comment")
    return None


def _wildcard(value: str) -> Problem | None:
    if any(c in value for c in "*?["):
        return Problem(f"copy source '{_show(value)}' contains a wildcard",
                       "copy a directory, or list the files one by one")
    return None


def _show(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")


def index_url_problem(value: str) -> Problem | None:
    """What is wrong when value is not a credential-free http(s) URL."""
    masked = masked_credentials(value)
    shown = _show(masked or value)
    hint = "write an http(s) URL, like https://pypi.example.com/simple"
    if not INDEX_URL_RE.match(value):
        return Problem(f"invalid index URL '{shown}'",
                       hint + ", with spaces and non-ASCII characters percent-encoded")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return Problem(f"invalid index URL '{shown}'", hint)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return Problem(f"index URL '{shown}'", hint, rest=" is not an http(s) URL")
    if masked is not None:
        return Problem(f"index URL '{shown}'", credentials_hint(IN_DOCKERFILE), rest=" carries credentials")
    return None


def _only_refs(text: str) -> bool:
    return bool(text) and not _REF_RE.sub("", text)


def _stray_dollar(text: str) -> bool:
    """A '$' that is neither a ${NAME} reference nor `$$` (a literal '$'), as the builder reads them."""
    return "$" in _REF_RE.sub("", text.replace("$$", ""))


_DOLLAR_HINT = ("the builder expands ${NAME} from its environment when it builds; write the name in braces, "
                "or $$ for a literal '$'")


def proxy_problem(value: str) -> Problem | None:
    """What is wrong when value is not an http(s) proxy URL whose credentials, if any, are ${NAME} references.

    A literal credential is an error, not a warning: the value is copied into the committed manifest.
    """
    shown = f"proxy '{_show(shown_proxy(value))}'"  # a literal secret is never shown
    if CONTROL_RE.search(value) or any(c.isspace() for c in value):
        return Problem(shown, "write one URL, like http://proxy:3128", rest=" contains a space or control character")
    if _stray_dollar(value):
        return Problem(shown, _DOLLAR_HINT, rest=" has a '$' that is not a ${NAME} reference")
    if _only_refs(value):  # the whole URL comes from the build host, like ${HTTPS_PROXY}
        return None
    return _proxy_url_problem(value, shown)


def _proxy_url_problem(value: str, shown: str) -> Problem | None:
    hint = "write http://host:port, or ${NAME} to take it from the build host's environment"
    try:
        parts = urlsplit(_REF_RE.sub("1", value))
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return Problem(f"invalid {shown}", hint)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return Problem(shown, hint, rest=" is not an http(s) URL")
    userinfo, secret, _ = proxy_secret(value)
    if userinfo is not None and not _only_refs(secret):
        return Problem(shown, PROXY_CREDENTIAL_HINT, rest=" holds a literal credential")
    return None


_Check = Callable[..., None]
# What YAML reads as one scalar (a bool is an int, a datetime a date): every type but None, list, set and dict.
_SCALARS: tuple[type, ...] = (str, int, float, bytes, datetime.date)


def _accepts(*types: type) -> Callable[[_Check], _Check]:
    """The types of value a check reads (a check without this reads strings). Any other value has its own
    error already (type, nullable) and is not checked twice."""
    def mark(check: _Check) -> _Check:
        check.accepts = types  # type: ignore[attr-defined]
        return check
    return mark


class _Checks:
    """dockwright's named checks (`check_with: name` in schemas/), without Cerberus: each reports what it finds
    through _problem (the validator makes it a Cerberus error; the probe of _passes_check only notes it)."""

    raw: dict[NodePath, str]  # the source text of scalars YAML read as something else than a string
    document_path: Any  # where Cerberus is in the document

    def _problem(self, field: Any, problem: Problem | None) -> None:
        raise NotImplementedError

    def _raw(self, field: Any, value: Any) -> str:
        if isinstance(value, str):
            return value
        path = tuple(self.document_path) + (field,)
        return self.raw.get(path, str(value))

    def _check_with_name(self, field: Any, value: Any) -> None:
        if len(value) > MAX_NAME:
            self._problem(field, Problem(
                f"name '{_show(value[:24])}...'",
                f"names are at most {MAX_NAME} characters: they become image names and directories",
                rest=f" is {len(value):,} characters long"))
        elif not NAME_RE.match(value):
            self._problem(field, Problem(f"invalid name '{_show(value)}'",
                                         "use lowercase letters and digits, separated by '-' or '_'"))

    def _check_with_project_name(self, field: Any, value: Any) -> None:
        if len(value) > MAX_PROJECT:
            self._problem(field, Problem(
                f"project name '{_show(value[:24])}...' is {len(value):,} characters long",
                f"a project name is at most {MAX_PROJECT} characters: it prefixes every image name"))
        elif not PROJECT_RE.match(value):
            self._problem(field, Problem(f"invalid project name '{_show(value)}'",
                                         "use lowercase letters, digits and '-', starting with a letter or digit"))

    def _check_with_output_dir(self, field: Any, value: Any) -> None:
        problem = check_path(value, what="output directory")
        if problem is None and posixpath.normpath(value) == ".":
            problem = Problem("output directory '.' is the project directory itself",
                              "use a subdirectory like 'generated'")
        self._problem(field, problem)

    def _check_with_project_file(self, field: Any, value: Any) -> None:
        self._problem(field, check_path(value, what="path"))

    _check_with_project_path = _check_with_project_file

    def _check_with_registry(self, field: Any, value: Any) -> None:
        if not _valid_name(value):
            self._problem(field, Problem(f"invalid registry '{_show(value)}'",
                                         "write host[:port]/path, like localhost:5000/ml, without a tag"))

    def _check_with_image_ref(self, field: Any, value: Any) -> None:
        if not valid_image(value):
            hint = "write name:tag, like python:3.11-slim"
            if "@" in value:
                hint = "write name@sha256: and the digest's 64 hex digits (or name:tag@sha256:...)"
            if value != value.lower() and valid_image(value.lower()):
                hint = "image names are lowercase"
            self._problem(field, Problem(f"invalid image reference '{_show(value)}'", hint))

    @_accepts(*_SCALARS)
    def _check_with_python_version(self, field: Any, value: Any) -> None:
        self._problem(field, python_problem(self._raw(field, value), quoted=isinstance(value, str)))

    def _credentials(self, field: Any, what: str, value: str, *, runtime: bool = False) -> bool:
        """A located error when value, written into the Dockerfile, carries URL credentials. A user part made
        of ${NAME} references is refused too: in a Dockerfile it is expanded from build args, which the image
        history records (only builders.<name>.proxy is expanded on the build host)."""
        masked = masked_credentials(value)
        if masked is None:
            return False
        hint = (RUNTIME_SECRET_HINT if runtime else credentials_hint(IN_DOCKERFILE))
        self._problem(field, Problem(f"{what} '{_show(masked)}'", hint, rest=" carries credentials"))
        return True

    def _check_with_argument(self, field: Any, value: Any) -> None:
        if self._credentials(field, "argument", value, runtime=True):
            return
        if "\x00" in value:
            self._problem(field, Problem(f"'{_show(value)}' contains a NUL character", "remove it"))

    def _check_with_installer_arg(self, field: Any, value: Any) -> None:
        masked = masked_credentials(value)
        if CONTROL_RE.search(value):
            self._problem(field, Problem(
                f"installer argument '{_show(masked or value)}' contains a newline or control character",
                "write one argument per list entry, on one line"))
        elif masked is not None:
            self._problem(field, Problem(f"installer argument '{_show(masked)}'", credentials_hint(IN_DOCKERFILE),
                                         rest=" carries credentials"))

    def _check_with_index_url(self, field: Any, value: Any) -> None:
        self._problem(field, index_url_problem(value))

    def _check_with_certificate(self, field: Any, value: Any) -> None:
        problem = check_path(value, what="certificate")
        if any(c in value for c in "*?["):
            problem = Problem(f"certificate '{_show(value)}' contains a wildcard", "list the files one by one")
        self._problem(field, problem)

    def _check_with_proxy_url(self, field: Any, value: Any) -> None:
        self._problem(field, proxy_problem(value))

    def _check_with_no_proxy(self, field: Any, value: Any) -> None:
        if _stray_dollar(value):
            self._problem(field, Problem(f"no_proxy '{_show(value)}'", _DOLLAR_HINT,
                                         rest=" has a '$' that is not a ${NAME} reference"))
        elif not NO_PROXY_RE.match(_REF_RE.sub("", value)):
            self._problem(field, Problem(
                f"invalid no_proxy '{_show(value)}'",
                "list hosts, domains and addresses separated by commas, like localhost,.corp.example,10.0.0.0/8"))

    def _check_with_command(self, field: Any, value: Any) -> None:
        if self._credentials(field, "command", value):
            return
        if not value.strip():
            self._problem(field, Problem("empty command", "remove the entry or write a command"))
        elif value.lstrip().startswith("-"):
            self._problem(field, Problem(
                f"command '{_show(value)}' starts with '-'",
                "RUN flags such as --mount or --network are not supported; write a shell command"))
        elif "\x00" in value:
            self._problem(field, Problem(f"command '{_show(value)}' contains a NUL character", "remove it"))

    def _check_with_apt_package(self, field: Any, value: Any) -> None:
        if not APT_RE.match(value):
            self._problem(field, Problem(
                f"invalid Debian package '{_show(value)}'",
                "write a package name, optionally with '=version', like 'libgomp1' or 'git=1:2.39.5-0+deb12u1'"))

    def _check_with_package_name(self, field: Any, value: Any) -> None:
        if not PACKAGE_RE.fullmatch(value):
            self._problem(field, Problem(f"invalid Python package name '{_show(value)}'", "write a name like 'torch'"))

    def _check_with_requirement(self, field: Any, value: Any) -> None:
        self._problem(field, requirement_problem(value))

    def _check_with_env_key(self, field: Any, value: Any) -> None:
        if not ENV_KEY_RE.match(value):
            self._problem(field, Problem(f"invalid variable name '{_show(value)}'",
                                         "use letters, digits and '_', not starting with a digit"))

    def _check_with_label_key(self, field: Any, value: Any) -> None:
        if not LABEL_KEY_RE.match(value):
            self._problem(field, Problem(
                f"invalid label key '{_show(value)}'",
                "use letters, digits, '.', '-', '_' and '/', like 'org.opencontainers.image.title'"))

    @_accepts(*_SCALARS)
    def _check_with_single_line(self, field: Any, value: Any) -> None:
        text = self._raw(field, value)
        if self._credentials(field, f"value of '{field}':", text, runtime=True):
            return
        if CONTROL_RE.search(text):
            self._problem(field, Problem(
                f"value of '{field}'", "a Dockerfile ENV, ARG or LABEL holds one line; put the text in a file and copy it",
                rest=f" contains a newline or control character: '{_show(text)}'"))

    @_accepts(*_SCALARS)
    def _check_with_user(self, field: Any, value: Any) -> None:
        value = self._raw(field, value)
        if not USER_RE.match(value):
            self._problem(field, Problem(f"invalid user name '{_show(value)}'",
                                         "use a lowercase name like 'app' (letters, digits, '_', '-'), or a numeric uid"))

    def _check_with_abs_path(self, field: Any, value: Any) -> None:
        if not value.startswith("/"):
            self._problem(field, Problem(f"workdir '{_show(value)}' is not absolute", "write it like /app"))
        elif not SAFE_PATH_RE.match(value) or " " in value or ".." in value.split("/"):
            self._problem(field, Problem(f"invalid workdir '{_show(value)}'", "use letters, digits and . _ - / only"))

    def _check_with_engine_url(self, field: Any, value: Any) -> None:
        hint = "write tcp://host:port, ssh://user@host or unix:///var/run/docker.sock"
        subject = f"invalid engine url '{_show(engine_url.shown(value))}'"
        if not URL_RE.match(value):
            self._problem(field, Problem(subject, hint))
        elif (why := engine_url.problem(value)) is not None:
            self._problem(field, Problem(subject, hint, rest=f": {why}"))

    @_accepts(str, dict)
    def _check_with_copy_item(self, field: Any, value: Any) -> None:
        if isinstance(value, str):
            self._problem(field, _wildcard(value) or check_path(value, what="copy source"))
            return
        for problem in _copy_entry_problems(value):
            self._problem(field, problem)


    def _check_with_secret_id(self, field: Any, value: Any) -> None:
        if not SECRET_ID_RE.match(value):
            self._problem(field, Problem(f"invalid secret id '{_show(value)}'",
                                         "use letters, digits and _ . - (at most 64), not starting with . or -"))

    @_accepts(dict)
    def _check_with_secret_source(self, field: Any, value: Any) -> None:
        for problem in _secret_source_problems(value):
            self._problem(field, problem)


# What each check reads, as declared beside it; Cerberus itself reports a check_with name it does not know.
_ACCEPTS: dict[str, tuple[type, ...]] = {
    name.removeprefix("_check_with_"): getattr(check, "accepts", (str,))
    for name, check in vars(_Checks).items() if name.startswith("_check_with_")}


def _bad_destination(dst: str) -> bool:
    parts = dst.split("/")
    return not dst.strip() or not SAFE_PATH_RE.match(dst) or ".." in parts or any(p.startswith("-") for p in parts)


def _copy_entry_problems(value: dict[Any, Any]) -> list[Problem]:
    """What is wrong with a `{from, to}` copy entry, each problem at the key it is about."""
    out = [Problem(f"unknown key '{key}' in a copy entry", suggest(key, ["from", "to"])
                   or "a copy entry has 'from' and 'to'", key=key)
           for key in sorted(set(value) - {"from", "to"})]
    if "from" not in value:
        out.append(Problem("copy entry is missing 'from'", "write {from: conf/prod.yaml, to: /app/conf.yaml}"))
    out += [Problem(f"copy '{key}' must be a string, not {_kind(value[key])}", key=key)
            for key in ("from", "to") if key in value and not isinstance(value[key], str)]
    src, dst = value.get("from"), value.get("to")
    if isinstance(src, str):
        problem = _wildcard(src) or check_path(src, what="copy source")
        if problem:
            out.append(replace(problem, key="from"))
    if isinstance(dst, str) and _bad_destination(dst):
        out.append(Problem(f"invalid copy destination '{_show(dst)}'",
                           "a path in the image, like /app/conf.yaml or conf/ (relative: under workdir), of letters, "
                           "digits and . _ - /, with no '..' and no part starting with '-'", key="to"))
    return out


def _secret_source_problems(value: dict[Any, Any]) -> list[Problem]:
    """What is wrong with a secret's `{env: NAME}` or `{file: path}`, each problem at the key it is about."""
    out = [Problem(f"unknown key '{key}' in a secret", suggest(str(key), ["env", "file"])
                   or "a secret is read from {env: NAME} or {file: path}", key=key)
           for key in sorted(set(value) - {"env", "file"}, key=str)]
    given = [key for key in ("env", "file") if key in value]
    if not given:
        out.append(Problem("secret names neither 'env' nor 'file'",
                           "write {env: NAME} (a variable of the build machine) or {file: ~/.netrc}"))
    elif len(given) == 2:
        out.append(Problem("secret names both 'env' and 'file'", "keep one", key="file"))
    for key in given:
        item = value[key]
        if not isinstance(item, str):
            out.append(Problem(f"secret '{key}' must be a string, not {_kind(item)}", key=key))
        elif key == "env" and not ENV_KEY_RE.match(item):
            out.append(Problem(f"invalid variable name '{_show(item)}'",
                               "use letters, digits and '_', not starting with a digit", key=key))
        elif key == "file" and not SECRET_FILE_RE.match(item):
            out.append(Problem(f"invalid secret file '{_show(item)}'",
                               "a path of the build machine without commas, quotes, backslashes or control characters",
                               key=key))
    return out


# Exactly the values a check_with accepts (or fewer): used only to skip Cerberus for entries that pass.
_SURE: dict[str, Any] = {
    "env_key": lambda v: isinstance(v, str) and ENV_KEY_RE.match(v) is not None,
    "label_key": lambda v: isinstance(v, str) and LABEL_KEY_RE.match(v) is not None,
    "name": lambda v: isinstance(v, str) and NAME_RE.match(v) is not None and len(v) <= MAX_NAME,
    "single_line": lambda v: not isinstance(v, str) or (CONTROL_RE.search(v) is None and "://" not in v),
}
_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "dict": dict,
                           "list": list}


_Sure = Callable[[Any], bool]
_PREDICATES: dict[int, tuple[Any, _Sure | None]] = {}
# Rules a predicate understands; any other rule makes the whole predicate None (Cerberus decides).
_KNOWN_RULES = {"type", "nullable", "check_with", "schema", "keysrules", "valuesrules", "allowed", "empty", "required",
                "meta"}


class _Probe(_Checks):
    """Runs one named check outside Cerberus and tells whether it found a problem (only strings and mappings
    are checked here: a string is its own raw text)."""

    def __init__(self) -> None:
        self.failed = False

    def _problem(self, field: Any, problem: Problem | None) -> None:
        self.failed = self.failed or problem is not None


def _passes_check(name: str) -> _Sure:
    """Whether a value surely passes check_with `name`: its _SURE twin says so, or the check itself, run on
    a probe, finds nothing (for strings and mappings: a number a check reads as written, like `python: 3.10`,
    is doubtful)."""
    quick = cast("_Sure | None", _SURE.get(name))
    accepts = _ACCEPTS[name]

    def passes(value: Any) -> bool:
        if quick is not None and quick(value):
            return True
        if not isinstance(value, accepts):
            return True  # the check skips it (the type rule speaks for it)
        if type(value) not in (str, dict):
            return False
        probe = _Probe()
        getattr(probe, f"_check_with_{name}")("", value)
        return not probe.failed
    return passes


def _named(schema: Any) -> Any:
    return _schemas()[schema] if isinstance(schema, str) else schema


def _mapping_predicate(schema: dict[str, Any]) -> _Sure | None:
    """A mapping that surely passes a schema: known keys only, the required ones present, each value sure."""
    fields = {key: _predicate(rules) for key, rules in schema.items()}
    if any(sure is None for sure in fields.values()):
        return None
    checks = cast(dict[str, _Sure], fields)
    required = frozenset(key for key, rules in schema.items() if rules.get("required"))

    def sure(value: Any) -> bool:
        return required <= value.keys() and all(key in checks and checks[key](item) for key, item in value.items())
    return sure


def _value_rules(rules: dict[str, Any]) -> list[_Sure] | None:
    """One predicate per rule (other than type and nullable) of rules, or None when one is not understood."""
    out: list[_Sure] = []
    if "allowed" in rules:
        allowed = rules["allowed"]
        out.append(lambda v: type(v) in (str, int) and v in allowed)
    if rules.get("empty") is False:
        out.append(lambda v: not hasattr(v, "__len__") or len(v) > 0)
    if "check_with" in rules:
        out.append(_passes_check(rules["check_with"]))
    for rule, kind in (("schema", None), ("keysrules", "keys"), ("valuesrules", "values")):
        if rule not in rules:
            continue
        inner = _named(rules[rule])
        each = _predicate(inner)  # keysrules, valuesrules, or `schema` as a list's item rules
        # `schema` as a mapping's field schema (Cerberus tells the two apart by the value's type, as _nested does)
        whole = _mapping_predicate(inner) if kind is None and all(isinstance(r, dict) for r in inner.values()) \
            else None
        if each is None and whole is None:
            return None
        out.append(_nested(kind, each, whole))
    return out


def _nested(kind: str | None, each: _Sure | None, whole: _Sure | None) -> _Sure:
    if kind == "keys":
        return lambda v: not isinstance(v, dict) or all(each(k) for k in v)  # type: ignore[misc]
    if kind == "values":
        return lambda v: not isinstance(v, dict) or all(each(x) for x in v.values())  # type: ignore[misc]

    def nested(v: Any) -> bool:  # `schema`: a list's items each, or a mapping's fields
        if isinstance(v, dict):
            return whole is not None and whole(v)
        if isinstance(v, list):
            return each is not None and all(each(x) for x in v)
        return True
    return nested


def _predicate(rules: Any) -> _Sure | None:
    """A function telling whether a value surely passes rules (Cerberus would find nothing wrong with it),
    or None when rules hold a rule it does not know; made once per rules mapping. Stricter than Cerberus
    (exact types, no None where a check or `allowed` would see it): a doubt only means Cerberus decides."""
    cached = _PREDICATES.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    sure: _Sure | None = None
    others = _value_rules(rules) if isinstance(rules, dict) and set(rules) <= _KNOWN_RULES else None
    if others is not None:
        names = rules.get("type", [])
        types = frozenset(_TYPES[t] for t in ([names] if isinstance(names, str) else names) if t in _TYPES)
        typed = "type" in rules
        null = bool(rules.get("nullable")) and "allowed" not in rules  # no check reads None (_ACCEPTS)
        checks = tuple(others)

        def sure(value: Any) -> bool:
            if value is None:
                return null
            return (not typed or type(value) in types) and all(check(value) for check in checks)

    _PREDICATES[id(rules)] = (rules, sure)
    return sure


def _doubtful(rules: Any, value: Any, *, keys: bool) -> Any:
    if not isinstance(value, dict) or len(value) < 16:
        return value
    sure = _predicate(rules)
    if sure is None:
        return value
    if keys:
        return {k: v for k, v in value.items() if not sure(k)}
    return {k: v for k, v in value.items() if not sure(v)}


@cache
def _project_predicate() -> _Sure | None:
    return _mapping_predicate(_schemas()["project"])


def surely_valid(data: Any) -> bool:
    """Whether Cerberus would surely find no error in a project document (then it need not run)."""
    sure = _project_predicate()
    return isinstance(data, dict) and sure is not None and sure(data)


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    folder = data_dir("schemas")
    out = {p.stem: parse_resource(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.yaml"))}
    settings = {k: v for k, v in out["environment"].items() if k != "extends"}
    out["settings"] = settings
    return out


def source_schemas() -> dict[str, dict[str, Any]]:
    """The schemas as written in schemas/ (with `settings`, the environment's keys but `extends`)."""
    return _schemas()


@cache
def _project_schema() -> Any:
    """The project schema, checked by Cerberus once (with the named schemas it refers to registered); each
    validation makes a validator of its own from it, which costs microseconds."""
    from cerberus.schema import schema_registry

    schemas = _schemas()
    for name, definition in schemas.items():
        if name != "project":
            schema_registry.add(name, definition)
    return _cerberus().validator(schemas["project"]).schema


def indentation_hint(environment: str) -> str | None:
    """When an environment is named like an environment key, its line is likely indented too little."""
    if environment not in _schemas()["environment"]:
        return None
    return f"'{environment}:' is read as an environment named '{environment}'; is it indented too little?"


def section_keys(name: str) -> list[str]:
    """The keys a section's schema allows (for suggestions elsewhere)."""
    return sorted(_schemas()[name])


NAMED = ("integrations", "environments", "pipelines", "builders")


def validate(doc: Located, sink: Collector) -> set[NodePath]:
    """Report every schema violation in doc to sink, located.

    Returns what the errors are in: (section, name) for a named entry such as an environment,
    or () when the error is elsewhere; later stages can go on without the broken entries.
    """
    if not isinstance(doc.data, dict):
        return {()}
    if surely_valid(doc.data):  # the common case: no validator, not even the Cerberus schema, is made
        return set()
    return _cerberus_validate(doc, sink)


def _cerberus_validate(doc: Located, sink: Collector) -> set[NodePath]:
    cerberus = _cerberus()
    v = cerberus.validator(_project_schema(), raw=doc.raw, error_handler=cerberus.leaves)
    v.validate(doc.data, normalize=False)
    broken: set[NodePath] = set()
    for error in v.errors:
        _report(cerberus.reports, error, doc, sink)
        path = tuple(error.document_path)
        if len(path) >= 2 and path[0] in NAMED and isinstance(doc.data.get(path[0]), dict):
            broken.add(path[:2])
        else:
            broken.add(())
    return broken


_ANY = object()  # any one part of a path
# Which named schema governs the mapping at a path (for unknown-key suggestions); a path not here has none.
_SCHEMA_AT: tuple[tuple[tuple[Any, ...], str], ...] = (
    ((), "project"), (("zenml",), "zenml"),
    (("runner",), "target"), (("server",), "target"),
    (("runner", "settings"), "settings"), (("server", "settings"), "settings"),
    (("environments", _ANY), "environment"), (("integrations", _ANY), "integration"),
    (("pipelines", _ANY), "pipeline"), (("builders", _ANY), "builder"),
    (("pipelines", _ANY, "steps", _ANY), "step"),
    (("pipelines", _ANY, "steps", _ANY, "settings"), "settings"),
)


def _schema_at(path: NodePath) -> str | None:
    """Which named schema governs the mapping at path (for unknown-key suggestions)."""
    for pattern, name in _SCHEMA_AT:
        if len(pattern) == len(path) and all(want is _ANY or want == part for want, part in zip(pattern, path)):
            return name
    return None


def _nested_key_hint(key: str, path: NodePath) -> str | None:
    """did-you-mean for a key inside a builder's `tls` or `proxy` mapping."""
    p = list(path)
    if not (len(p) == 3 and p[0] == "builders" and p[2] in ("tls", "proxy")):
        return None
    keys = sorted(_schemas()["builder"][str(p[2])]["schema"])
    if p[2] == "proxy" and key.lower() in ("http_proxy", "https_proxy"):
        return f"did you mean '{key.lower().removesuffix('_proxy')}'?"
    return suggest(key.lower(), keys) or f"{p[2]} has {', '.join(keys)}"


def _container(path: NodePath) -> NodePath:
    """The mapping that holds the field at path (list indices and the key itself stripped)."""
    p = list(path)
    while p and isinstance(p[-1], int):
        p.pop()
    return tuple(p[:-1])


def _field(path: NodePath) -> str:
    p = list(path)
    name = ""
    while p and isinstance(p[-1], int):
        name = f"[{p.pop()}]" + name
    return f"{p[-1]}{name}" if p else name


def _in(path: NodePath) -> str:
    container = _container(path)
    return f" in {describe(container)}" if container else ""


_Reported = tuple["Location | None", str, "str | None"]  # where, message, hint


def _unknown_field(error: Any, path: NodePath, doc: Located) -> _Reported:
    key = str(path[-1])
    schema = _schema_at(path[:-1])
    hint = suggest(key, section_keys(schema)) if schema else _nested_key_hint(key, path[:-1])
    if schema == "settings" and key == "extends":
        hint = "settings always derive from the step's environment"
    if schema == "project" and key in ("pipeline", "environment", "integration", "builder"):
        hint = f"did you mean '{key}s'?"
    if schema == "environment":
        hint = indentation_hint(str(path[-2])) or hint
    if schema == "integration" and key in section_keys("environment"):
        hint = f"an integration cannot set {key}: set it on the environments that list '{path[-2]}' in integrations"
    return doc.key_at(path), f"unknown key '{key}'{_where(path[:-1])}", hint


def _required_field(error: Any, path: NodePath, doc: Located) -> _Reported:
    parent = path[:-1]
    where = f" in {describe(parent)}" if parent else ""
    loc = doc.key_at(parent) if parent else doc.at(())
    return loc, f"missing required key '{path[-1]}'{where}", _required_hint(str(path[-1]))


def _bad_type(error: Any, path: NodePath, doc: Located) -> _Reported:
    expected = error.constraint if isinstance(error.constraint, list) else [error.constraint]
    want = _one_of([str(t) for t in expected if not (t == "integer" and "float" in expected)])  # a number covers both
    hint = _type_hint(expected, error.value, doc.raw.get(path))
    return doc.at(path), f"'{_field(path)}'{_in(path)} must be {want}, not {_kind(error.value)}", hint


def _one_of(types: list[str]) -> str:
    """`a string`, `a string or a list`, `a string, a number or true or false`."""
    words = [_TYPE_WORDS.get(t, t) for t in types]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _unallowed_value(error: Any, path: NodePath, doc: Located) -> _Reported:
    allowed = [str(a) for a in error.constraint]
    hint = suggest(str(error.value), allowed) if isinstance(error.value, str) else None
    return (doc.at(path), f"'{_field(path)}'{_in(path)} must be one of {', '.join(allowed)}, not {error.value!r}",
            hint)


def _empty(error: Any, path: NodePath, doc: Located) -> _Reported:
    return doc.at(path), f"'{_field(path)}'{_in(path)} is empty", "add at least one entry"


def _null(error: Any, path: NodePath, doc: Located) -> _Reported:
    return doc.at(path), f"'{_field(path)}'{_in(path)} is empty (null)", "give it a value or remove the key"


def _custom(error: Any, path: NodePath, doc: Located) -> _Reported:
    problem: Problem = error.info[0]
    if problem.key is not None:  # about a key inside the checked mapping: point at that key
        location = doc.key_at(path + (problem.key,))
    elif error.schema_path and "keysrules" in error.schema_path:  # keysrules errors are about the key itself
        location = doc.key_at(path)
    else:
        location = doc.at(path)
    return location, problem.message(_in(path)), problem.hint


def _other(error: Any, path: NodePath, doc: Located) -> _Reported:
    return doc.at(path), f"invalid value for '{_field(path)}'{_in(path)}: {error.rule} {error.constraint}", None


@dataclass(frozen=True)
class _Cerberus:
    validator: Any  # _Validator: Cerberus's Validator with dockwright's checks and rules
    leaves: Any  # the error handler that lists each error (groups opened)
    reports: dict[int, Callable[[Any, NodePath, Located], _Reported]]  # by Cerberus's error code


@cache
def _cerberus() -> _Cerberus:
    """Cerberus, imported only when a document is not surely valid (the import alone reads every installed
    package's metadata, for Cerberus's version)."""
    from cerberus import Validator, errors as cerr
    from cerberus.utils import TypeDefinition

    class _Validator(_Checks, Validator):  # type: ignore[misc]
        """Cerberus with dockwright's named checks (`check_with: name` in schemas/). `raw` (the source text of
        scalars YAML read as something else than a string) is a validator argument, which Cerberus hands on to
        the child validators it makes for nested mappings."""

        # bool is an int in Python: `version: true` is no 1, and `python: yes` no number.
        types_mapping = {**Validator.types_mapping,
                         "integer": TypeDefinition("integer", (int,), (bool,)),
                         "float": TypeDefinition("float", (float, int), (bool,))}

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.raw: dict[NodePath, str] = kwargs.get("raw", {})
            super().__init__(*args, **kwargs)

        def _validate_check_with(self, checks: Any, field: Any, value: Any) -> None:
            accepts = _ACCEPTS.get(checks) if isinstance(checks, str) else None
            if accepts is None or isinstance(value, accepts):
                super()._validate_check_with(checks, field, value)

        # Cerberus reads a rule's argument schema from the rule method's docstring.
        _validate_check_with.__doc__ = Validator._validate_check_with.__doc__

        def _error(self, *args: Any) -> None:
            if len(args) != 1:  # one error: Cerberus builds it, then comes back here with a list of one
                super()._error(*args)
                return
            # Cerberus re-sorts the whole list (and the schema error tree, which nothing reads) on every insert:
            # quadratic in the number of errors. Inserting each in place gives the same order in O(log n) compares.
            # _errors is where Cerberus's rules read a child validator's errors from (its documented store for
            # _error); this override is the one place here that touches it.
            for error in args[0]:
                bisect.insort_right(self._errors, error)
                self.document_error_tree.add(error)
                self.error_handler.emit(error)

        # A mapping with thousands of entries (an `env:` of 400,000 keys) costs Cerberus a child validator and a
        # dozen rule lookups per entry. Entries that surely pass their rules are left out: only the rest (all of
        # them when any rule is unknown here) go through Cerberus, so every error is exactly Cerberus's.
        def _validate_keysrules(self, schema: Any, field: Any, value: Any) -> None:
            super()._validate_keysrules(schema, field, _doubtful(schema, value, keys=True))

        _validate_keysrules.__doc__ = Validator._validate_keysrules.__doc__

        def _validate_valuesrules(self, schema: Any, field: Any, value: Any) -> None:
            super()._validate_valuesrules(schema, field, _doubtful(schema, value, keys=False))

        _validate_valuesrules.__doc__ = Validator._validate_valuesrules.__doc__

        def _validate_regex(self, pattern: Any, field: Any, value: Any) -> None:
            # Cerberus appends `$`, which also matches before a final newline: a regex rule is a full match here.
            if isinstance(value, str) and not re.fullmatch(pattern, value):
                self._error(field, cerr.REGEX_MISMATCH)

        _validate_regex.__doc__ = Validator._validate_regex.__doc__

        def _problem(self, field: Any, problem: Problem | None) -> None:
            """A check's finding, as the info of a custom Cerberus error."""
            if problem is not None:
                self._error(field, cerr.CUSTOM, problem)

    class _Leaves(cerr.BaseErrorHandler):  # type: ignore[misc]
        """Validator.errors as the list of Cerberus's ValidationErrors, groups (such as a list's items) opened."""

        def __call__(self, errors: Any) -> list[Any]:
            out: list[Any] = []
            for error in errors:
                out.extend(self(error.child_errors) if error.is_group_error else [error])
            return out

    reports: dict[int, Callable[[Any, NodePath, Located], _Reported]] = {
        cerr.UNKNOWN_FIELD.code: _unknown_field, cerr.REQUIRED_FIELD.code: _required_field,
        cerr.BAD_TYPE.code: _bad_type, cerr.UNALLOWED_VALUE.code: _unallowed_value,
        cerr.EMPTY_NOT_ALLOWED.code: _empty, cerr.NOT_NULLABLE.code: _null, cerr.CUSTOM.code: _custom}
    return _Cerberus(_Validator, _Leaves, reports)


def __getattr__(name: str) -> Any:
    if name == "_Validator":  # the validator class, made on first use (tests/test_architecture.py reads it)
        return _cerberus().validator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _report(reports: dict[int, Callable[[Any, NodePath, Located], _Reported]], error: Any, doc: Located,
            sink: Collector) -> None:
    location, message, hint = reports.get(error.code, _other)(error, tuple(error.document_path), doc)
    sink.error(location, message, hint)


def _where(path: NodePath) -> str:
    return f" in {describe(path)}" if path else ""


_TYPE_WORDS = {
    "string": "a string", "list": "a list", "dict": "a mapping", "integer": "a whole number",
    "float": "a number", "boolean": "true or false", "number": "a number",
}


def _required_hint(key: str) -> str | None:
    return {
        "version": "add 'version: 1' at the top",
        "project": "add 'project: <name>', which prefixes image names",
        "steps": "a pipeline lists its steps, like steps: {train: {}}",
        "environment": "name the environment it uses, like environment: base",
    }.get(key)


def _type_hint(expected: list[str], value: Any, raw: str | None) -> str | None:
    if "string" in expected and isinstance(value, (int, float, bool)) and raw is not None:
        return f"YAML read {raw} as {_kind(value)}; quote it: \"{raw}\""
    if "list" in expected and isinstance(value, str):
        return f"write a list: [{', '.join(value.split())}]"
    if "dict" in expected and isinstance(value, list):
        return "write a mapping of names to entries, not a list"
    return None
