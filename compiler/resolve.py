"""Resolution through uv (the pinned version images use): requirements -> exact versions, files, hashes, sizes.

Two `uv pip compile` runs per image and platform, both for an exact target (`--python-version`,
`--python-platform <arch>-manylinux_2_28`), never a hand-rolled resolver:
1. requirements.txt output with `# via` annotations: the versions, and which package pulled in which. The
   previous pins are written to the output file first, so uv keeps each one that still fits (its
   preference rule); `--upgrade` / `--upgrade-package` drop them. A layered child gets its parent's pins as
   `--constraint`, so it can add packages but never re-pin one of its parent's.
2. the same pins, `--no-deps`, as pylock.toml (PEP 751): every file of each version that the platform can
   install, with its sha256 and size (from the index's PEP 691/700 JSON API, or uv's own download). It runs
   `--offline` first (the pages are in uv's cache from run 1), online only when that fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from .errors import read_regular

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MANYLINUX = "manylinux_2_28"  # glibc 2.28: Debian 10+, Ubuntu 20.04+, every python:X-slim image
ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
TIMEOUT = 600  # seconds for one uv run; uv's own HTTP time-out is UV_HTTP_TIMEOUT (30 s by default)

# pip/uv install options that change what resolves (the rest only change how files are installed).
_WITH_VALUE = {"--only-binary", "--no-binary", "--find-links", "-f", "--index-strategy", "--prerelease",
               "--resolution", "--exclude-newer"}
_FLAGS = {"--pre": ("--prerelease", "allow"), "--prefer-binary": None, "--no-build": ("--no-build",)}


_UV_PASS = {"UV_CACHE_DIR", "UV_HTTP_TIMEOUT", "UV_NATIVE_TLS", "UV_KEYRING_PROVIDER", "UV_CONCURRENT_DOWNLOADS",
            "UV_HTTP_RETRIES"}


class ResolveError(Exception):
    """uv could not resolve: `text` is its explanation, with no machine paths."""

    def __init__(self, text: str, *, missing_uv: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.missing_uv = missing_uv


@dataclass(frozen=True)
class Request:
    python: str
    platform: str
    requirements: tuple[str, ...]
    local_packages: tuple[str, ...] = ()  # absolute directories: their dependencies are resolved, not them
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    installer_args: tuple[str, ...] = ()
    certificates: tuple[str, ...] = ()  # the PEM text of the project's CA files (read inside the project)
    constraints: Mapping[str, str] = field(default_factory=dict)  # a layered parent's pins
    preferences: Mapping[str, str] = field(default_factory=dict)  # the previous lock's pins
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Artifact:
    name: str
    hash: str
    size: int | None


@dataclass(frozen=True)
class Resolution:
    versions: dict[str, str]  # normalised name -> version
    parents: dict[str, tuple[str, ...]]  # name -> the packages it is required by ("" = a direct requirement)
    files: dict[str, tuple[Artifact, ...]]
    local: dict[str, str] = field(default_factory=dict)  # a local package's name -> its directory


def resolution_args(installer_args: tuple[str, ...]) -> tuple[str, ...]:
    """The installer arguments that change what resolves, translated to `uv pip compile` flags."""
    out: list[str] = []
    args = list(installer_args)
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in _WITH_VALUE:
            if not eq:
                value = args[i + 1] if i + 1 < len(args) else ""
                i += 1
            out += ["--find-links" if name == "-f" else name, value]
        elif arg in _FLAGS and _FLAGS[arg] is not None:
            out += list(_FLAGS[arg] or ())
        i += 1
    return tuple(out)


_UV_LOCK = threading.Lock()
_UV: list[str] = []


def uv_binary() -> str:
    """uv's binary, found once (uv.find_uv_bin reads sysconfig, whose first use is not thread-safe)."""
    with _UV_LOCK:
        if not _UV:
            _UV.append(_find_uv())
        return _UV[0]


def _find_uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:  # pragma: no cover - uv is a dependency
        raise ResolveError("uv is not installed; reinstall dockwright (it depends on uv)", missing_uv=True) from None
    try:
        return str(find_uv_bin())
    except FileNotFoundError:  # pragma: no cover
        raise ResolveError("uv's binary was not found; reinstall dockwright", missing_uv=True) from None


def _environment(tmp: Path, certificates: tuple[str, ...]) -> dict[str, str]:
    # A user's uv.toml (--no-config) and UV_* settings must not change what a project locks to: only those
    # that say how to reach the index (cache, time-out, TLS trust store, keyring for credentials) pass.
    # COLUMNS would make uv wrap its explanation at that width: the error text would depend on the terminal.
    env = {k: v for k, v in os.environ.items() if (not k.startswith("UV_") or k in _UV_PASS) and k != "COLUMNS"}
    env.update({"NO_COLOR": "1", "UV_NO_PROGRESS": "1"})
    env.setdefault("UV_HTTP_TIMEOUT", "30")
    if certificates:
        bundle = tmp / "ca-bundle.pem"
        # The bundle this machine trusts (SSL_CERT_FILE, else the system's), plus the project's CAs.
        import ssl  # here: compile imports this module (through lock.stale), and never needs it

        system = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
        trusted = [read_regular(system).decode("utf-8", errors="replace")] if system and Path(system).is_file() else []
        bundle.write_text("".join(pem.strip() + "\n" for pem in [*trusted, *certificates]), encoding="utf-8")
        env["SSL_CERT_FILE"] = str(bundle)
    return env


def _run(cmd: list[str], tmp: Path, env: dict[str, str]) -> str:
    try:
        done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ResolveError(f"uv did not finish within {TIMEOUT} s") from None
    except OSError as exc:
        raise ResolveError(f"cannot run uv: {exc.strerror}") from None
    if done.returncode != 0:
        text = (done.stderr or done.stdout).replace(str(tmp) + os.sep, "").replace(str(tmp), ".")
        raise ResolveError(_tidy(text))
    return done.stdout


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    lines = [line[len("error: "):] if line.startswith("error: ") else line for line in lines]
    return "\n".join(line for line in lines if line) or "uv failed without a message"


_PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(?:==\s*(?P<version>\S+)|@\s*(?P<url>\S+))"
                  r"\s*(?:#\s*via\s+(?P<via>.*))?")


def _parse_pins(text: str, local: Mapping[str, str]) -> tuple[dict[str, str], dict[str, tuple[str, ...]], list[str],
                                                               dict[str, str]]:
    """uv's pins: versions, what requires each package, the exact lines to ask files for, and the local
    packages (local: their file URLs -> directories) by name, which are left out of the rest."""
    versions: dict[str, str] = {}
    parents: dict[str, tuple[str, ...]] = {}
    lines: list[str] = []
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "--")):
            continue
        m = _PIN.fullmatch(line)
        if m is None:
            raise ResolveError(f"unexpected line in uv's output: {line}")
        name = str(canonicalize_name(m.group("name")))
        if m.group("url") in local:
            found[name] = local[m.group("url")]
            continue
        versions[name] = m.group("version") or ""
        via = [v.strip() for v in (m.group("via") or "").split(",") if v.strip()]
        parents[name] = tuple(sorted({"" if v.startswith(("-r ", "-c ")) else str(canonicalize_name(v))
                                      for v in via if not v.startswith("-c ")} or {""}))
        pinned = f"=={m.group('version')}" if m.group("version") else f" @ {m.group('url')}"
        lines.append(f"{m.group('name')}{pinned}")
    return versions, parents, lines, found


def _artifact(entry: object) -> Artifact | None:
    if not isinstance(entry, dict):
        return None
    where = entry.get("url") or entry.get("path") or ""
    name = unquote(urlsplit(str(where)).path.rsplit("/", 1)[-1]) if where else str(entry.get("name") or "")
    sha = (entry.get("hashes") or {}).get("sha256")
    if not name or not isinstance(sha, str):
        return None
    size = entry.get("size")
    return Artifact(name=name, hash=f"sha256:{sha}", size=size if isinstance(size, int) else None)


def _parse_pylock(text: str) -> dict[str, tuple[Artifact, ...]]:
    data = tomllib.loads(text)
    out: dict[str, tuple[Artifact, ...]] = {}
    for pkg in data.get("packages", []):
        name = str(canonicalize_name(pkg["name"]))
        found = [_artifact(w) for w in pkg.get("wheels", [])] + [_artifact(pkg.get("sdist")),
                                                                  _artifact(pkg.get("archive"))]
        if pkg.get("vcs") or pkg.get("directory"):
            raise ResolveError(f"'{name}' comes from a VCS repository or a directory, which cannot be locked by hash; "
                               "require it from an index, or as a URL to an archive")
        files = sorted({a for a in found if a is not None}, key=lambda a: a.name)
        if not files:
            raise ResolveError(f"the index lists no file with a sha256 hash for {name}")
        out[name] = tuple(files)
    return out


def _versions_of(text: str) -> dict[str, str]:
    data = tomllib.loads(text)
    return {str(canonicalize_name(p["name"])): str(p.get("version", "")) for p in data.get("packages", [])}


def _write_inputs(tmp: Path, req: Request) -> dict[str, str]:
    """requirements.in (local packages as file URLs: uv names them in its output) and, unless upgrading
    everything, the previous pins as pins.txt (uv prefers them); returns the local packages' URLs."""
    local = {Path(where).as_uri(): where for where in req.local_packages}
    (tmp / "requirements.in").write_text("".join(f"{r}\n" for r in (*req.requirements, *local)), encoding="utf-8")
    if req.preferences and not req.upgrade:
        (tmp / "pins.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(req.preferences.items())),
                                      encoding="utf-8")
    return local


def resolve(req: Request) -> Resolution:
    """Resolve one image for one platform; ResolveError with uv's explanation when it cannot."""
    uv = uv_binary()
    # --python: this interpreter runs any sdist build; without it uv would search the machine (and maybe
    # download) a Python of the target version, which takes seconds and varies between machines.
    target = ["--python", sys.executable, "--no-python-downloads", "--python-version", req.python,
              "--python-platform", f"{ARCH[req.platform]}-{MANYLINUX}"]
    index = ["--index-url", req.index_url] if req.index_url else []
    for url in req.extra_index_urls:
        index += ["--extra-index-url", url]
    common = ["--no-config", "--no-header", "--quiet", "--color", "never", *target, *index,
              *resolution_args(req.installer_args)]
    with tempfile.TemporaryDirectory(prefix="dockwright-lock-") as name:
        tmp = Path(name)
        env = _environment(tmp, req.certificates)
        local = _write_inputs(tmp, req)
        cmd = [uv, "pip", "compile", "requirements.in", "--output-file", "pins.txt", "--annotation-style", "line",
               *common]
        if req.constraints:
            (tmp / "parent.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(req.constraints.items())),
                                            encoding="utf-8")
            cmd += ["--constraint", "parent.txt"]
        if req.upgrade:
            cmd.append("--upgrade")
        for pkg in req.upgrade_packages:
            cmd += ["--upgrade-package", pkg]
        _run(cmd, tmp, env)
        versions, parents, lines, found = _parse_pins((tmp / "pins.txt").read_text(encoding="utf-8"), local)
        (tmp / "exact.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        files_cmd = [uv, "pip", "compile", "exact.txt", "--no-deps", "--format", "pylock.toml", "--output-file",
                     "pylock.toml", *common]
        try:  # the first run has just cached every page it needs: no second round of requests
            _run([*files_cmd, "--offline"], tmp, env)
        except ResolveError:
            _run(files_cmd, tmp, env)
        pylock = (tmp / "pylock.toml").read_text(encoding="utf-8")
        files = _parse_pylock(pylock)
        for name_, version in _versions_of(pylock).items():
            if not versions.get(name_):
                versions[name_] = version
    return Resolution(versions=versions, parents=parents, files=files, local=found)


__all__ = ["Request", "Resolution", "Artifact", "ResolveError", "resolve", "resolution_args", "MANYLINUX", "ARCH"]
