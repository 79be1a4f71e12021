"""What every builder backend shares: jobs (from manifest.json), progress, outcomes, the scrubber, the proxy
build args, and which registries are spoken to in plain HTTP (loopback)."""

from __future__ import annotations

import ipaddress
import os
import re
import string
from dataclasses import replace
from urllib.parse import unquote, urlsplit
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..errors import UsageError

if TYPE_CHECKING:
    from ..manifest import ImageRecord

# The label that records why an image is what it is: `docker inspect` shows it.
KEY_LABEL = "io.dockwright.build-key"
IMAGE_LABEL = "io.dockwright.image"
PROJECT_LABEL = "io.dockwright.project"
# Docker leaves these build args out of `docker history`, which is why proxies (often with
# credentials in them) travel this way and nothing else does.
PROXY_ARGS = {"http": ("HTTP_PROXY", "http_proxy"), "https": ("HTTPS_PROXY", "https_proxy"),
              "no_proxy": ("NO_PROXY", "no_proxy")}


@dataclass(frozen=True)
class Job:
    """One image of manifest.json, with the paths the builder needs."""

    name: str
    tag: str  # the local tag every FROM line uses: project-image:spec12
    push_tag: str | None
    dockerfile: str  # relative to the project root
    context: str  # relative to the project root
    inputs: tuple[str, ...]  # relative to the project root
    parent: str | None  # another job's name
    checks: tuple[str, ...]
    project: str
    from_ref: str = ""  # the image its Dockerfile starts FROM
    environments: tuple[str, ...] = ()
    needs_root_parent: bool = False  # right only on a parent that runs as root (compile did not know its user)
    mounts: bool = False  # its Dockerfile has RUN --mount (cache mounts, secrets)
    secrets: tuple[tuple[str, str, str], ...] = ()  # (id, "env" | "file", where the builder reads it)

    @classmethod
    def of(cls, project: str, image: ImageRecord) -> Job:
        return cls(
            name=image.name, tag=image.tag, push_tag=image.push_tag, dockerfile=image.dockerfile,
            context=image.context, inputs=image.inputs, parent=image.parent, checks=image.checks, project=project,
            from_ref=image.from_ref or "", environments=image.environments,
            needs_root_parent=image.needs_root_parent, mounts=image.mounts, secrets=image.secrets,
        )


@dataclass(frozen=True)
class Endpoint:
    """Where a builder sends its work, as manifest.json's `builders.<name>` says."""

    name: str
    type: str
    url: str | None
    tls: Mapping[str, Any]
    proxy: Mapping[str, str]
    root: Path  # the project root: tls file paths are relative to it
    network: str | None = None  # `host`: build containers on the host's network
    members: tuple[Endpoint, ...] = ()  # a pool's builders


class Cancelled(Exception):
    """The run was interrupted; the build in flight was abandoned."""


class ImageFailed(Exception):
    """One image failed: the message says what, the log tail shows why; its dependents are skipped."""

    def __init__(self, message: str, *, step: int | None = None, log: list[str] | None = None,
                 engine_down: bool = False) -> None:
        super().__init__(message)
        self.step = step  # the Dockerfile instruction (1-based) the engine was at
        self.log = log or []
        self.engine_down = engine_down  # the engine stopped answering: in a pool, the image goes to another member


@dataclass
class Progress:
    """What a worker reports about one image while it works."""

    name: str
    state: str  # queued | resolving | building | checking | pushing | pulling | output (a line the build
    # printed, in detail) | an Outcome status
    step: int = 0
    steps: int = 0
    detail: str = ""
    where: str = ""  # in a pool, on a final state: the member that built, found or pulled it


Report = Callable[[Progress], None]


@dataclass
class Outcome:
    """The result for one image, as the summary and --json show it."""

    name: str
    tag: str
    status: str  # built | reused | pulled | failed | skipped
    key: str | None = None
    seconds: float = 0.0
    image_id: str | None = None
    pushed: str | None = None
    digest: str | None = None  # the pushed image's registry digest (sha256:...), as the push reported it
    message: str = ""
    where: str | None = None  # "Dockerfile:line" of the failing instruction
    instruction: str | None = None
    log: list[str] = field(default_factory=list)
    builder: str | None = None  # in a pool: the member that built, found or pulled it (or where it failed)

    def as_json(self) -> dict[str, Any]:
        return {"image": self.name, "tag": self.tag, "build_key": self.key, "status": self.status,
                "seconds": round(self.seconds, 2), "id": self.image_id, "pushed": self.pushed,
                **({"digest": self.digest} if self.digest else {}), "error": self.message or None, "where": self.where, "instruction": self.instruction,
                "log": list(self.log), **({"builder": self.builder} if self.builder else {})}


# ANSI/ECMA-48 escape sequences: CSI (colours, cursor), OSC (titles, links) and the two-byte ones.
_TERMINAL_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_ANY_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#\s@]+)@")


class Scrubber:
    """Takes every secret out of a line the build printed, before it leaves the schedule: the user part of
    any URL becomes '***', and so does each expanded builder proxy value's user name, password and user part
    (the build sees them as http_proxy=..., and a command may print them in any form)."""

    def __init__(self, proxy: Mapping[str, str], environ: Mapping[str, str] | None = None,
                 secrets: Sequence[str] = ()) -> None:
        env = dict(os.environ if environ is None else environ)
        found: set[str] = {piece for text in secrets for piece in secret_pieces(text)}
        for value in proxy.values():
            expanded = string.Template(value).safe_substitute(env)
            try:
                parts = urlsplit(expanded if "://" in expanded else f"http://{expanded}")
                userinfo = parts.netloc.rpartition("@")[0]
                pieces = [userinfo, *userinfo.split(":", 1)] if userinfo else []
            except ValueError:
                pieces = []
            for piece in pieces:
                for form in (piece, unquote(piece)):
                    if len(form) >= 3:
                        found.add(form)
        self.secrets = sorted(found, key=len, reverse=True)  # the whole user part before its pieces

    def line(self, text: str) -> str:
        text = _TERMINAL_CODES.sub("", text)  # colours and cursor moves a tool printed for a terminal
        text = _ANY_USERINFO.sub(lambda m: f"{m.group('scheme')}://***@", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def progress(self, event: Progress) -> Progress:
        return replace(event, detail=self.line(event.detail)) if event.detail else event

    def outcome(self, outcome: Outcome) -> Outcome:
        return replace(outcome, message=self.line(outcome.message), log=[self.line(x) for x in outcome.log],
                       instruction=self.line(outcome.instruction) if outcome.instruction else outcome.instruction)


_NETRC_WORDS = {"machine", "login", "password", "default", "account", "macdef"}


def secret_pieces(text: str) -> set[str]:
    """What of a build secret's text is taken out of every line: the whole text, each line, and each word of 4
    characters or more that is not one of a netrc file's keywords."""
    pieces = {text.strip(), *(line.strip() for line in text.splitlines())}
    pieces |= {word for word in text.split() if len(word) >= 4 and word not in _NETRC_WORDS}
    return {piece for piece in pieces if len(piece) >= 4}


def read_secret(root: Path, kind: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """A build secret's text on this machine ("env": a variable; "file": ~ is home, relative to the project root);
    OSError or KeyError when it is not there."""
    if kind == "env":
        return (os.environ if environ is None else environ)[where]
    return secret_path(root, where).read_text(encoding="utf-8", errors="replace")


def secret_path(root: Path, where: str) -> Path:
    return root / Path(where).expanduser()


def proxy_args(proxy: dict[str, str] | Any, environ: dict[str, str] | None = None) -> dict[str, str]:
    """builders.<b>.proxy as Docker's predefined proxy build args, ${NAME} read from this machine now."""
    env = dict(os.environ if environ is None else environ)
    args: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    for key, value in sorted(dict(proxy or {}).items()):
        template = string.Template(value)
        unset = [n for n in template.get_identifiers() if n not in env]
        if unset:
            for name in unset:
                missing.setdefault(name, []).append(key)
            continue
        # compile has already refused any '$' that is neither ${NAME} nor $$, so substitute cannot fail
        expanded = template.substitute(env)
        for name in PROXY_ARGS.get(key, ()):
            args[name] = expanded
    if missing:
        names = sorted(missing)
        listed = ", ".join(f"${{{n}}} (in '{', '.join(missing[n])}')" for n in names)
        raise UsageError(f"builder proxy uses {listed}, not set in this environment\n"
                         f"hint: export {' '.join(f'{n}=...' for n in names)} before 'dockwright build'")
    return args


def loopback(tag: str) -> bool:
    """A registry on this machine, which Docker and this backend speak plain HTTP to."""
    host = tag.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
