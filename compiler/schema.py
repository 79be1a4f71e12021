"""Cerberus schemas from schemas/, one reused validator, every error mapped to a located Diagnostic.

This is the only module that imports cerberus. Checks here are syntactic (no file system):
values that reach a Dockerfile are either validated to a safe pattern here or quoted in render.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from cerberus import Validator, errors as cerr
from cerberus.schema import schema_registry
from cerberus.utils import TypeDefinition
from packaging.requirements import InvalidRequirement, Requirement

from . import engine_url
from .errors import USERINFO_RE, Collector, is_credential, suggest
from .load import Located, NodePath, describe, parse_resource
from .resources import data_dir

_SEP = "\x1f"  # between a custom message and its hint
_KEY = "\x1d"  # after the key, inside the checked mapping, that a custom message is about

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
SAFE_PATH_RE = re.compile(r"^[\w.@+=,~/ -]+\Z")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Control characters (C0, DEL, C1) and every character str.splitlines() ends a line at (pip's
# requirements parser splits lines with it): none may be in a value written on one line of a text file.
LINE_BREAK_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
URL_RE = re.compile(r"^(?:tcp|unix|ssh|npipe|http|https)://[^\s'\"\\]+\Z")
INDEX_URL_RE = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+\Z")  # RFC 3986 characters, ASCII
NO_PROXY_RE = re.compile(r"^[A-Za-z0-9._:*/,\[\]% -]*\Z")
_USERINFO_RE = USERINFO_RE
_REF_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_VARIABLES_RE = re.compile(r"^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)+\Z")  # ${NAME} or $NAME, meant as references



def credentials_hint(written: str) -> str:
    """Why a credential in a URL is refused, and what to do instead."""
    return (f"it would be written into {written}; instead, use a mirror that needs no token, or an "
            "authenticating proxy set in builders.<name>.proxy: the builder passes it as Docker's predefined "
            "proxy build args, which docker history does not record")


_IN_DOCKERFILE = "the Dockerfile and the image history"
RUNTIME_SECRET_HINT = ("it would be written into the Dockerfile and the image; give the secret when the container runs "
                       "instead (docker run -e NAME=..., or a secret store), not in dockwright.yaml")
REQUIREMENTS_WRITTEN = "the generated requirements.txt and the image"

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


def check_path(value: str, *, what: str) -> tuple[str, str] | None:
    """(message, hint) when value is not a relative path that stays inside the project."""
    if not value.strip():
        return f"{what} is empty", "give a path relative to the project directory"
    if CONTROL_RE.search(value) or "\\" in value:
        return f"{what} '{_show(value)}' contains a control character or backslash", "use plain '/' paths"
    if value.startswith("/"):
        return f"{what} '{value}' is absolute", "give a path relative to the project directory"
    if any(part.startswith("-") for part in value.split("/")):
        return f"{what} '{value}' has a part starting with '-'", "rename it; such names read as options"
    if not SAFE_PATH_RE.match(value):
        bad = next(c for c in value if not SAFE_PATH_RE.match(c))
        return f"{what} '{value}' contains '{bad}'", "use letters, digits and . _ - + @ = , ~ / and spaces"
    norm = posixpath.normpath(value)
    if norm == ".." or norm.startswith("../"):
        return f"{what} '{value}' points outside the project directory", "keep it under the directory of dockwright.yaml"
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


def python_problem(text: str, *, quoted: bool) -> tuple[str, str] | None:
    """(message, hint) unless text names a CPython minor of PYTHON_VERSIONS, like 3.11 or 3.11.9."""
    if PYTHON_RE.match(text) and ".".join(text.split(".")[:2]) in PYTHON_VERSIONS:
        return None
    known = f"versions {PYTHON_VERSIONS[0]} to {PYTHON_VERSIONS[-1]}"
    if not quoted:  # YAML read a number: 3.1 may have been meant as 3.10
        return (f"invalid Python version {text}: YAML reads it as a number",
                f"dockwright knows {known}; write the version in quotes, like python: \"3.10\"")
    if PYTHON_RE.match(text):
        return f"unknown Python version '{text}'", f"dockwright knows {known}"
    return f"invalid Python version '{_show(text)}'", "write it like \"3.11\""


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


def requirement_problem(value: str) -> tuple[str, str] | None:
    """(message, hint) when value is not one PEP 508 requirement that pip reads back as exactly that line of
    requirements.txt (no line break, option, comment or continuation), without credentials or local paths;
    `\\x1e` marks where the place goes."""
    masked = masked_credentials(value)
    shown = _show(masked or value)
    if local_requirement(value):
        return f"requirement '{shown}'\x1e is a local path", LOCAL_HINT
    if LINE_BREAK_RE.search(value) or value.lstrip().startswith("-"):
        return (f"invalid requirement '{shown}'",
                "write one PEP 508 requirement, like 'pandas==2.2.2'; options go in installer_args")
    if masked is not None:
        return f"requirement '{shown}'\x1e carries credentials", credentials_hint(REQUIREMENTS_WRITTEN)
    detail = _requirement_problem(value)
    if detail is not None:
        return f"invalid requirement '{value}'\x1e: {detail}", "write it like 'pandas==2.2.2'"
    if _PIP_OPTION_RE.search(value) or _PIP_COMMENT_RE.search(value) or value.rstrip().endswith("\\"):
        return (f"invalid requirement '{shown}'\x1e: pip would read part of it as an option, a comment or a "
                "line continuation", "remove the ' -', ' #' or trailing '\\'")
    return None


def _wildcard(value: str) -> tuple[str, str] | None:
    if any(c in value for c in "*?["):
        return f"copy source '{_show(value)}' contains a wildcard", "copy a directory, or list the files one by one"
    return None


def _show(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")


def masked_credentials(text: str) -> str | None:
    """text with the credentials of each URL in it shown as '***', or None when no URL carries any.

    Any user part of an http(s) URL is a credential (`user:pass@`, or a token as `token@`); for other
    schemes, such as git+ssh://git@host, only a password is.
    """
    found = False

    def mask(match: re.Match[str]) -> str:
        nonlocal found
        scheme, userinfo = match.group("scheme"), match.group("userinfo")
        if is_credential(scheme, userinfo):
            found = True
            return f"{scheme}://***@"
        return match.group(0)

    masked = _USERINFO_RE.sub(mask, text)
    return masked if found else None


def index_url_problem(value: str) -> tuple[str, str] | None:
    """(message, hint) when value is not a credential-free http(s) URL; `\x1e` marks where the place goes."""
    masked = masked_credentials(value)
    shown = _show(masked or value)
    hint = "write an http(s) URL, like https://pypi.example.com/simple"
    if not INDEX_URL_RE.match(value):
        return f"invalid index URL '{shown}'\x1e", hint + ", with spaces and non-ASCII characters percent-encoded"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return f"invalid index URL '{shown}'\x1e", hint
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"index URL '{shown}'\x1e is not an http(s) URL", hint
    if masked is not None:
        return f"index URL '{shown}'\x1e carries credentials", credentials_hint(_IN_DOCKERFILE)
    return None


def _only_refs(text: str) -> bool:
    return bool(text) and not _REF_RE.sub("", text)


def _stray_dollar(text: str) -> bool:
    """A '$' that is neither a ${NAME} reference nor `$$` (a literal '$'), as the builder reads them."""
    return "$" in _REF_RE.sub("", text.replace("$$", ""))


_DOLLAR_HINT = ("the builder expands ${NAME} from its environment when it builds; write the name in braces, "
                "or $$ for a literal '$'")


def proxy_problem(value: str) -> tuple[str, str] | None:
    """(message, hint) when value is not an http(s) proxy URL whose credentials, if any, are ${NAME} references.

    A literal credential is an error, not a warning: the value is copied into the committed manifest.
    """
    userinfo = _USERINFO_RE.match(value)
    user, colon, password = userinfo.group("userinfo").partition(":") if userinfo else ("", "", "")
    secret = password if colon else user  # a user name alone is taken for a token
    shown = _show(value)
    if userinfo is not None and secret and not _VARIABLES_RE.match(secret):  # a literal secret is never shown
        masked = f"{user}:***" if colon else "***"
        shown = _show(f"{userinfo.group('scheme')}://{masked}@{value[userinfo.end():]}")
    if CONTROL_RE.search(value) or any(c.isspace() for c in value):
        return f"proxy '{shown}'\x1e contains a space or control character", "write one URL, like http://proxy:3128"
    if _stray_dollar(value):
        return (f"proxy '{shown}'\x1e has a '$' that is not a ${{NAME}} reference", _DOLLAR_HINT)
    if _only_refs(value):  # the whole URL comes from the build host, like ${HTTPS_PROXY}
        return None
    hint = "write http://host:port, or ${NAME} to take it from the build host's environment"
    try:
        parts = urlsplit(_REF_RE.sub("1", value))
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return f"invalid proxy '{shown}'\x1e", hint
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"proxy '{shown}'\x1e is not an http(s) URL", hint
    if userinfo is not None and not _only_refs(secret):
        return (f"proxy '{shown}'\x1e holds a literal credential",
                ("dockwright.yaml and manifest.json are committed; write ${NAME} references, like "
                 "http://${PROXY_USER}:${PROXY_PASSWORD}@proxy:3128, which the builder expands from its "
                 "environment when it builds"))
    return None


class _Validator(Validator):  # type: ignore[misc]
    """Cerberus with dockwright's named checks (`check_with: name` in schemas/)."""

    raw: dict[NodePath, str] = {}
    # bool is an int in Python: `version: true` is no 1, and `python: yes` no number.
    types_mapping = {**Validator.types_mapping,
                     "integer": TypeDefinition("integer", (int,), (bool,)),
                     "float": TypeDefinition("float", (float, int), (bool,))}

    def _validate_check_with(self, checks: Any, field: Any, value: Any) -> None:
        # A null or wrongly typed value already has its own error (type, nullable); don't check it twice.
        if value is None or isinstance(value, (list, set)):
            return
        if not isinstance(value, (str, dict)) and checks not in ("python_version", "single_line", "user"):
            return
        if isinstance(value, dict) and checks != "copy_item":
            return
        super()._validate_check_with(checks, field, value)

    # Cerberus reads a rule's argument schema from the rule method's docstring.
    _validate_check_with.__doc__ = Validator._validate_check_with.__doc__

    def _error(self, *args: Any) -> None:
        if len(args) != 1:  # one error: Cerberus builds it, then comes back here with a list of one
            super()._error(*args)
            return
        # Cerberus re-sorts the whole list (and the schema error tree, which nothing reads) on every insert:
        # quadratic in the number of errors. Inserting each in place gives the same order in O(log n) compares.
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

    def _fail(self, field: Any, message: str, hint: str | None = None, *, key: str | None = None) -> None:
        text = message if hint is None else f"{message}{_SEP}{hint}"
        self._error(field, text if key is None else f"{key}{_KEY}{text}")

    def _raw(self, field: Any, value: Any) -> str:
        if isinstance(value, str):
            return value
        path = tuple(self.document_path) + (field,)
        return self.raw.get(path, str(value))

    def _check_with_name(self, field: Any, value: Any) -> None:
        if not isinstance(value, str):
            return
        if len(value) > MAX_NAME:
            self._fail(field, f"name '{_show(value[:24])}...'\x1e is {len(value):,} characters long",
                       f"names are at most {MAX_NAME} characters: they become image names and directories")
        elif not NAME_RE.match(value):
            self._fail(field, f"invalid name '{_show(value)}'",
                       "use lowercase letters and digits, separated by '-' or '_'")

    def _check_with_project_name(self, field: Any, value: Any) -> None:
        if len(value) > MAX_PROJECT:
            self._fail(field, f"project name '{_show(value[:24])}...' is {len(value):,} characters long",
                       f"a project name is at most {MAX_PROJECT} characters: it prefixes every image name")
        elif not PROJECT_RE.match(value):
            self._fail(field, f"invalid project name '{_show(value)}'",
                       "use lowercase letters, digits and '-', starting with a letter or digit")

    def _check_with_output_dir(self, field: Any, value: Any) -> None:
        problem = check_path(value, what="output directory")
        if problem is None and posixpath.normpath(value) == ".":
            problem = ("output directory '.' is the project directory itself", "use a subdirectory like 'generated'")
        if problem:
            self._fail(field, *problem)

    def _check_with_project_file(self, field: Any, value: Any) -> None:
        problem = check_path(value, what="path")
        if problem:
            self._fail(field, *problem)

    _check_with_project_path = _check_with_project_file

    def _check_with_registry(self, field: Any, value: Any) -> None:
        if not _valid_name(value):
            self._fail(field, f"invalid registry '{_show(value)}'",
                       "write host[:port]/path, like localhost:5000/ml, without a tag")

    def _check_with_image_ref(self, field: Any, value: Any) -> None:
        if not valid_image(value):
            hint = "write name:tag, like python:3.11-slim"
            if value != value.lower() and valid_image(value.lower()):
                hint = "image names are lowercase"
            self._fail(field, f"invalid image reference '{_show(value)}'", hint)

    def _check_with_python_version(self, field: Any, value: Any) -> None:
        text = self._raw(field, value)
        problem = python_problem(text, quoted=isinstance(value, str))
        if problem:
            self._fail(field, *problem)

    def _credentials(self, field: Any, what: str, value: str, *, runtime: bool = False) -> bool:
        """A located error when value, written into the Dockerfile, carries URL credentials. A user part made
        of ${NAME} references is refused too: in a Dockerfile it is expanded from build args, which the image
        history records (only builders.<name>.proxy is expanded on the build host)."""
        masked = masked_credentials(value)
        if masked is None:
            return False
        hint = (RUNTIME_SECRET_HINT if runtime else credentials_hint(_IN_DOCKERFILE))
        self._fail(field, f"{what} '{_show(masked)}'\x1e carries credentials", hint)
        return True

    def _check_with_argument(self, field: Any, value: Any) -> None:
        if self._credentials(field, "argument", value, runtime=True):
            return
        if "\x00" in value:
            self._fail(field, f"'{_show(value)}' contains a NUL character", "remove it")

    def _check_with_installer_arg(self, field: Any, value: Any) -> None:
        masked = masked_credentials(value)
        if CONTROL_RE.search(value):
            self._fail(field, f"installer argument '{_show(masked or value)}' contains a newline or control character",
                       "write one argument per list entry, on one line")
        elif masked is not None:
            self._fail(field, f"installer argument '{_show(masked)}'\x1e carries credentials",
                       credentials_hint(_IN_DOCKERFILE))

    def _check_with_index_url(self, field: Any, value: Any) -> None:
        problem = index_url_problem(value)
        if problem:
            self._fail(field, *problem)

    def _check_with_certificate(self, field: Any, value: Any) -> None:
        problem = check_path(value, what="certificate")
        if any(c in value for c in "*?["):
            problem = (f"certificate '{_show(value)}' contains a wildcard", "list the files one by one")
        if problem:
            self._fail(field, *problem)

    def _check_with_proxy_url(self, field: Any, value: Any) -> None:
        problem = proxy_problem(value)
        if problem:
            self._fail(field, *problem)

    def _check_with_no_proxy(self, field: Any, value: Any) -> None:
        if _stray_dollar(value):
            self._fail(field, f"no_proxy '{_show(value)}'\x1e has a '$' that is not a ${{NAME}} reference", _DOLLAR_HINT)
        elif not NO_PROXY_RE.match(_REF_RE.sub("", value)):
            self._fail(field, f"invalid no_proxy '{_show(value)}'",
                       "list hosts, domains and addresses separated by commas, like localhost,.corp.example,10.0.0.0/8")

    def _check_with_command(self, field: Any, value: Any) -> None:
        if self._credentials(field, "command", value):
            return
        if not value.strip():
            self._fail(field, "empty command", "remove the entry or write a command")
        elif value.lstrip().startswith("-"):
            self._fail(field, f"command '{_show(value)}' starts with '-'",
                       "RUN flags such as --mount or --network are not supported; write a shell command")
        elif "\x00" in value:
            self._fail(field, f"command '{_show(value)}' contains a NUL character", "remove it")

    def _check_with_apt_package(self, field: Any, value: Any) -> None:
        if not APT_RE.match(value):
            self._fail(field, f"invalid Debian package '{_show(value)}'",
                       "write a package name, optionally with '=version', like 'libgomp1' or 'git=1:2.39.5-0+deb12u1'")

    def _check_with_package_name(self, field: Any, value: Any) -> None:
        if not PACKAGE_RE.fullmatch(value):
            self._fail(field, f"invalid Python package name '{_show(value)}'", "write a name like 'torch'")

    def _check_with_requirement(self, field: Any, value: Any) -> None:
        problem = requirement_problem(value)
        if problem:
            self._fail(field, *problem)

    def _check_with_env_key(self, field: Any, value: Any) -> None:
        if not ENV_KEY_RE.match(value):
            self._fail(field, f"invalid variable name '{_show(value)}'",
                       "use letters, digits and '_', not starting with a digit")

    def _check_with_label_key(self, field: Any, value: Any) -> None:
        if not LABEL_KEY_RE.match(value):
            self._fail(field, f"invalid label key '{_show(value)}'",
                       "use letters, digits, '.', '-', '_' and '/', like 'org.opencontainers.image.title'")

    def _check_with_single_line(self, field: Any, value: Any) -> None:
        if value is None:
            return
        text = self._raw(field, value)
        if self._credentials(field, f"value of '{field}':", text, runtime=True):
            return
        if CONTROL_RE.search(text):
            self._fail(field, f"value of '{field}'\x1e contains a newline or control character: '{_show(text)}'",
                       "a Dockerfile ENV, ARG or LABEL holds one line; put the text in a file and copy it")

    def _check_with_user(self, field: Any, value: Any) -> None:
        value = self._raw(field, value)
        if not USER_RE.match(value):
            self._fail(field, f"invalid user name '{_show(value)}'",
                       "use a lowercase name like 'app' (letters, digits, '_', '-'), or a numeric uid")

    def _check_with_abs_path(self, field: Any, value: Any) -> None:
        if not value.startswith("/"):
            self._fail(field, f"workdir '{_show(value)}' is not absolute", "write it like /app")
        elif not SAFE_PATH_RE.match(value) or " " in value or ".." in value.split("/"):
            self._fail(field, f"invalid workdir '{_show(value)}'", "use letters, digits and . _ - / only")

    def _check_with_engine_url(self, field: Any, value: Any) -> None:
        if not URL_RE.match(value):
            self._fail(field, f"invalid engine url '{_show(engine_url.shown(value))}'",
                       "write tcp://host:port, ssh://user@host or unix:///var/run/docker.sock")
        elif (why := engine_url.problem(value)) is not None:
            self._fail(field, f"invalid engine url '{_show(engine_url.shown(value))}'\x1e: {why}",
                       "write tcp://host:port, ssh://user@host or unix:///var/run/docker.sock")

    def _check_with_copy_item(self, field: Any, value: Any) -> None:
        if isinstance(value, str):
            problem = _wildcard(value) or check_path(value, what="copy source")
            if problem:
                self._fail(field, *problem)
            return
        unknown = sorted(set(value) - {"from", "to"})
        for key in unknown:
            self._fail(field, f"unknown key '{key}' in a copy entry",
                       suggest(key, ["from", "to"]) or "a copy entry has 'from' and 'to'", key=key)
        if "from" not in value:
            self._fail(field, "copy entry is missing 'from'", "write {from: conf/prod.yaml, to: /app/conf.yaml}")
        for key in ("from", "to"):
            if key in value and not isinstance(value[key], str):
                self._fail(field, f"copy '{key}' must be a string, not {_kind(value[key])}", key=key)
        src, dst = value.get("from"), value.get("to")
        if isinstance(src, str):
            problem = _wildcard(src) or check_path(src, what="copy source")
            if problem:
                self._fail(field, *problem, key="from")
        if isinstance(dst, str):
            if (not dst.strip() or not SAFE_PATH_RE.match(dst) or ".." in dst.split("/")
                    or any(part.startswith("-") for part in dst.split("/"))):
                self._fail(field, f"invalid copy destination '{_show(dst)}'",
                           "use an absolute path like /app/conf.yaml (letters, digits, . _ - / only)", key="to")


# Exactly the values a check_with accepts (or fewer): used only to skip Cerberus for entries that pass.
_SURE: dict[str, Any] = {
    "env_key": lambda v: isinstance(v, str) and ENV_KEY_RE.match(v) is not None,
    "label_key": lambda v: isinstance(v, str) and LABEL_KEY_RE.match(v) is not None,
    "name": lambda v: isinstance(v, str) and NAME_RE.match(v) is not None and len(v) <= MAX_NAME,
    "single_line": lambda v: not isinstance(v, str) or (CONTROL_RE.search(v) is None and "://" not in v),
}
_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "dict": dict,
                           "list": list}


_PREDICATES: dict[int, tuple[Any, Any]] = {}


def _predicate(rules: Any) -> Any:
    """A function telling whether a value surely passes rules (type, nullable and a known check_with only),
    or None when rules hold anything else; made once per rules mapping."""
    cached = _PREDICATES.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    sure = None
    if isinstance(rules, dict) and set(rules) <= {"type", "nullable", "check_with"} \
            and rules.get("check_with", "single_line") in _SURE:
        names = rules.get("type", [])
        types = frozenset(_TYPES[t] for t in ([names] if isinstance(names, str) else names) if t in _TYPES)
        nullable = bool(rules.get("nullable"))
        check = _SURE[rules["check_with"]] if "check_with" in rules else None

        def sure(value: Any) -> bool:
            if value is None:
                return nullable
            return type(value) in types and (check is None or bool(check(value)))  # bool is no integer here

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
def _validator() -> _Validator:
    schemas = _schemas()
    for name, definition in schemas.items():
        if name != "project":
            schema_registry.add(name, definition)
    return _Validator(schemas["project"])


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
    v = _validator()
    _Validator.raw = doc.raw  # on the class: child validators (one per nested mapping) read it, too
    v.validate(doc.data, normalize=False)
    broken: set[NodePath] = set()
    for error in _leaves(v._errors):
        _report(error, doc, sink)
        path = tuple(error.document_path)
        if len(path) >= 2 and path[0] in NAMED and isinstance(doc.data.get(path[0]), dict):
            broken.add(path[:2])
        else:
            broken.add(())
    return broken


def _leaves(errs: Any) -> list[Any]:
    out = []
    for e in errs:
        if e.is_group_error:
            out.extend(_leaves(e.child_errors))
        else:
            out.append(e)
    return out


_SCHEMA_FOR = {
    "environments": "environment", "integrations": "integration", "pipelines": "pipeline",
    "builders": "builder",
}


def _schema_at(path: NodePath) -> str | None:
    """Which named schema governs the mapping at path (for unknown-key suggestions)."""
    p = list(path)
    if not p:
        return "project"
    if p == ["zenml"]:
        return "zenml"
    if p[0] in ("runner", "server"):
        if len(p) == 1:
            return "target"
        if len(p) == 2 and p[1] == "settings":
            return "settings"
        return None
    if p[0] in _SCHEMA_FOR and len(p) == 2:
        return _SCHEMA_FOR[str(p[0])]
    if p[0] == "pipelines" and len(p) == 4 and p[2] == "steps":
        return "step"
    if p[0] == "pipelines" and len(p) == 5 and p[2] == "steps" and p[4] == "settings":
        return "settings"
    if p[0] == "builders" and len(p) == 3 and p[2] == "tls":
        return None
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


def _report(error: Any, doc: Located, sink: Collector) -> None:
    path: NodePath = tuple(error.document_path)
    code = error.code
    value = error.value
    if code == cerr.UNKNOWN_FIELD.code:
        key = str(path[-1])
        schema = _schema_at(path[:-1])
        hint = suggest(key, section_keys(schema)) if schema else _nested_key_hint(key, path[:-1])
        if schema == "settings" and key == "extends":
            hint = "settings always derive from the step's environment"
        if schema == "project" and key in ("pipeline", "environment", "integration", "builder"):
            hint = f"did you mean '{key}s'?"
        if schema == "environment":
            hint = indentation_hint(str(path[-2])) or hint
        sink.error(doc.key_at(path), f"unknown key '{key}'{_where(path[:-1])}", hint)
    elif code == cerr.REQUIRED_FIELD.code:
        parent = path[:-1]
        where = f" in {describe(parent)}" if parent else ""
        loc = doc.key_at(parent) if parent else doc.at(())
        sink.error(loc, f"missing required key '{path[-1]}'{where}", _required_hint(str(path[-1])))
    elif code == cerr.BAD_TYPE.code:
        expected = error.constraint if isinstance(error.constraint, list) else [error.constraint]
        want = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected)
        hint = _type_hint(expected, value, doc.raw.get(path))
        sink.error(doc.at(path), f"'{_field(path)}'{_in(path)} must be {want}, not {_kind(value)}", hint)
    elif code == cerr.UNALLOWED_VALUE.code:
        allowed = [str(a) for a in error.constraint]
        hint = suggest(str(value), allowed) if isinstance(value, str) else None
        sink.error(doc.at(path), f"'{_field(path)}'{_in(path)} must be one of {', '.join(allowed)}, not {value!r}",
                   hint)
    elif code == cerr.EMPTY_NOT_ALLOWED.code:
        sink.error(doc.at(path), f"'{_field(path)}'{_in(path)} is empty", "add at least one entry")
    elif code == cerr.NOT_NULLABLE.code:
        sink.error(doc.at(path), f"'{_field(path)}'{_in(path)} is empty (null)", "give it a value or remove the key")
    elif code == cerr.CUSTOM.code:
        text = str(error.info[0])
        location = _custom_location(error, path, doc)
        where = _in(path)
        if _KEY in text:  # about a key inside the checked mapping: point at that key
            sub, _, text = text.partition(_KEY)
            location = doc.key_at(path + (sub,))
        message, _, hint = text.partition(_SEP)
        message = message.replace("\x1e", where) if "\x1e" in message else message + where
        sink.error(location, message, hint or None)
    else:
        sink.error(doc.at(path), f"invalid value for '{_field(path)}'{_in(path)}: {error.rule} {error.constraint}")


def _custom_location(error: Any, path: NodePath, doc: Located) -> Any:
    # keysrules errors are about the key itself.
    if error.schema_path and "keysrules" in error.schema_path:
        return doc.key_at(path)
    return doc.at(path)


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
