"""Parent image digests through the Registry HTTP API v2 (standard library only; no docker SDK).

`digests(ref, platforms)` asks the image's registry for the manifest of the tag (an OCI index, a Docker
manifest list, or a single manifest) and returns its digest and one manifest digest per platform.
- Auth: anonymous first; on `401` with `WWW-Authenticate: Bearer realm=..,service=..,scope=..` a token is
  fetched from the realm (with the Docker CLI's credentials for that registry, when it has some), on
  `Basic` the credentials are sent. Credentials come from `$DOCKER_CONFIG/config.json` (default
  `~/.docker/config.json`): `auths.<host>.auth` (base64 user:password), `identitytoken` is not supported;
  `credHelpers.<host>` / `credsStore` run `docker-credential-<name> get` (a bounded time).
- Mirrors: `DOCKWRIGHT_REGISTRY_MIRRORS="docker.io=mirror.corp:5000,ghcr.io=..."` (or the `mirrors`
  argument) sends the requests for a registry to its pull-through mirror (`host[:port]`, or with an
  explicit `http://` / `https://`). Digests are content addresses, so a
  mirror returns the same ones; the lock keeps the reference as written, never the mirror.
- Plain HTTP only for loopback registries (127.0.0.1, ::1, localhost), as Docker does by default, or a
  mirror written with `http://`. HTTPS trusts the system's CAs plus the environment's `certificates`.
- Every request has a time-out; a registry that cannot be reached is one RegistryError naming it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

TIMEOUT = 15.0  # seconds per request
DOCKER_HUB = "docker.io"
MIRRORS_ENV = "DOCKWRIGHT_REGISTRY_MIRRORS"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")


class RegistryError(Exception):
    """An image's digests could not be found: one line that names the registry and what to try."""


class Unreachable(RegistryError):
    """The registry did not answer at all (network, DNS, proxy, time-out): nothing about the image is known."""


@dataclass(frozen=True)
class Reference:
    registry: str  # docker.io for Docker Hub
    repository: str  # library/python
    tag: str | None
    digest: str | None

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.registry == DOCKER_HUB else self.registry


@dataclass(frozen=True)
class Digests:
    digest: str
    platforms: tuple[tuple[str, str], ...]


def _registry_of(rest: str) -> tuple[str, str]:
    """The registry a reference names (Docker Hub unless its first part looks like a host) and the rest."""
    first, slash, remainder = rest.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return DOCKER_HUB, rest
    return (DOCKER_HUB if first in _HUB_ALIASES else first), remainder


def parse_reference(ref: str) -> Reference:
    """Docker's normalisation: `python:3.11` is docker.io/library/python:3.11."""
    rest, _, digest = ref.partition("@")
    registry, path = _registry_of(rest)
    name, _, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if registry == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    if not name or (digest and not _DIGEST.fullmatch(digest)):
        raise RegistryError(f"cannot read image reference '{ref}'")
    return Reference(registry=registry, repository=name, tag=tag or (None if digest else "latest"),
                     digest=digest or None)


def mirrors_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    text = (environ if environ is not None else os.environ).get(MIRRORS_ENV, "")
    out = {}
    for item in text.split(","):
        if "=" in item:
            source, _, mirror = item.partition("=")
            out[source.strip()] = mirror.strip().rstrip("/")
    return out


def _docker_config() -> dict[str, Any]:
    base = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        data = json.loads((base / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _config_keys(registry: str) -> list[str]:
    """The keys the Docker CLI files a registry's credentials under (Docker Hub has several)."""
    if registry == DOCKER_HUB:
        return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
    return [registry]


def credentials(registry: str, config: dict[str, Any] | None = None) -> tuple[str, str] | None:
    """(user, password) for registry from the Docker CLI's config, or None: an `auths` entry first, then
    the registry's credential helper (`credHelpers`, else `credsStore`)."""
    cfg = _docker_config() if config is None else config
    keys = _config_keys(registry)
    return _from_auths(cfg.get("auths") or {}, keys) or _from_helper(_helper_name(cfg, keys), keys[0])


def _from_auths(auths: Any, keys: list[str]) -> tuple[str, str] | None:
    """The first `auths` entry under keys with a readable `auth` (base64 user:password) and a user."""
    if not isinstance(auths, dict):
        return None
    for key in keys:
        entry = auths.get(key) or auths.get(f"https://{key}")
        if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
            continue
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            continue
        if user:
            return user, password
    return None


def _helper_name(cfg: dict[str, Any], keys: list[str]) -> Any:
    helpers = cfg.get("credHelpers") or {}
    if isinstance(helpers, dict):
        named = next((helpers[k] for k in keys if k in helpers), None)
        if named:
            return named
    return cfg.get("credsStore")


def _from_helper(helper: Any, key: str) -> tuple[str, str] | None:
    """What `docker-credential-<helper> get` answers for key (a bounded time), when it names a user and secret."""
    if not isinstance(helper, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", helper):
        return None
    try:
        done = subprocess.run([f"docker-credential-{helper}", "get"], input=key, capture_output=True,
                              text=True, timeout=10)
        found = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if isinstance(found, dict) and found.get("Username") and found.get("Secret"):
        return str(found["Username"]), str(found["Secret"])
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(cas: tuple[str, ...]) -> urllib.request.OpenerDirector:
    """Follows no redirect itself; trusts the system's CAs plus cas (the PEM text of a project's `certificates`)."""
    context = ssl.create_default_context()
    for pem in cas:
        try:
            context.load_verify_locations(cadata=pem)
        except (OSError, ssl.SSLError):
            pass  # compile has checked them; a bad one only means less trust, never a crash
    return urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler(),
                                       urllib.request.HTTPSHandler(context=context))


@dataclass
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _request(opener: urllib.request.OpenerDirector, method: str, url: str, headers: dict[str, str],
             host: str) -> _Response:
    """One request; follows redirects itself, dropping Authorization when the host changes."""
    for _ in range(5):
        req = urllib.request.Request(url, method=method, headers=headers)
        try:
            with opener.open(req, timeout=TIMEOUT) as resp:
                return _Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read(4 << 20))
        except urllib.error.HTTPError as exc:
            hdrs = {k.lower(): v for k, v in exc.headers.items()}
            if exc.code in (301, 302, 303, 307, 308) and "location" in hdrs:
                new = urllib.parse.urljoin(url, hdrs["location"])
                if urllib.parse.urlsplit(new).netloc != urllib.parse.urlsplit(url).netloc:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                url = new
                continue
            return _Response(exc.code, hdrs, exc.read(64 << 10) if exc.fp is not None else b"")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise RegistryError(f"registry {host}'s TLS certificate is not trusted ({reason.verify_message}); "
                                    "list the CA that signed it in the environment's `certificates:`") from None
            hub = (f"; for Docker Hub behind a firewall, set {MIRRORS_ENV}=docker.io=<mirror host>"
                   if host == "registry-1.docker.io" else "")
            raise Unreachable(f"cannot reach registry {host}: {reason} (check the network or proxy{hub})") from None
    raise RegistryError(f"registry {host} redirects too many times")


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _basic(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(creds).encode()).decode()


class _Session:
    def __init__(self, ref: Reference, host: str, creds: tuple[str, str] | None,
                 cas: tuple[str, ...] = ()) -> None:
        scheme, sep, bare = host.partition("://")
        if not sep:  # plain HTTP only for loopback registries, as Docker does by default
            scheme, bare = ("http" if host.split(":")[0] in _LOOPBACK or host.startswith("[::1]") else "https"), host
        self.ref, self.host, self.creds = ref, bare, creds
        self.opener = _opener(cas)
        self.base = f"{scheme}://{bare}/v2/{ref.repository}"
        self.auth: str | None = None

    def get(self, path: str, accept: str) -> _Response:
        headers = {"Accept": accept, "User-Agent": "dockwright"}
        if self.auth:
            headers["Authorization"] = self.auth
        resp = _request(self.opener, "GET", f"{self.base}/{path}", headers, self.host)
        if resp.status == 401 and self.auth is None:
            self.auth = self._authorize(resp.headers.get("www-authenticate", ""))
            headers["Authorization"] = self.auth
            resp = _request(self.opener, "GET", f"{self.base}/{path}", headers, self.host)
        return resp

    def _authorize(self, header: str) -> str:
        """The Authorization header value a 401's challenge asks for: Basic credentials, or a bearer token."""
        scheme, params = _challenge(header)
        if scheme == "basic":
            if self.creds is None:
                raise RegistryError(f"registry {self.host} needs a login for {self.ref.repository} "
                                    f"(run `docker login {self.ref.registry}`)")
            return _basic(self.creds)
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.host} asks for an authentication dockwright does not speak "
                                f"({header[:60] or 'no WWW-Authenticate header'})")
        return f"Bearer {self._token(params)}"

    def _token(self, params: dict[str, str]) -> str:
        """A pull token from the challenge's realm (sending the credentials, when there are some)."""
        query = {"service": params.get("service", ""),
                 "scope": params.get("scope") or f"repository:{self.ref.repository}:pull"}
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(
            {k: v for k, v in query.items() if v})
        headers = {"User-Agent": "dockwright"}
        if self.creds is not None:
            headers["Authorization"] = _basic(self.creds)
        realm_host = urllib.parse.urlsplit(url).netloc or self.host
        resp = _request(self.opener, "GET", url, headers, realm_host)
        if resp.status != 200:
            raise RegistryError(f"registry {self.host} refused a token for {self.ref.repository} (HTTP "
                                f"{resp.status}; run `docker login {self.ref.registry}` if it is private)")
        try:
            token = json.loads(resp.body)
            value = token.get("token") or token.get("access_token")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"registry {self.host}'s token service answered without a token")
        return value


def _manifest(session: _Session, reference: str, what: str) -> tuple[str, dict[str, Any], str]:
    resp = session.get(f"manifests/{reference}", ACCEPT)
    if resp.status == 404:
        raise RegistryError(f"registry {session.host} has no {what}")
    if resp.status in (401, 403):
        raise RegistryError(f"registry {session.host} refused access to {what} (HTTP {resp.status}; run "
                            f"`docker login {session.ref.registry}` if it is private)")
    if resp.status != 200:
        raise RegistryError(f"registry {session.host} answered HTTP {resp.status} for {what}")
    digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
    try:
        data = json.loads(resp.body)
    except ValueError:
        raise RegistryError(f"registry {session.host} sent a manifest that is not JSON for {what}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"registry {session.host} sent a manifest that is not an object for {what}")
    kind = str(data.get("mediaType") or resp.headers.get("content-type", "")).split(";")[0]
    if "manifests" in data and kind not in (OCI_INDEX, DOCKER_LIST):
        kind = OCI_INDEX
    return digest, data, kind


def _platform_of(entry: dict[str, Any]) -> str | None:
    p = entry.get("platform")
    if not isinstance(p, dict):
        return None
    return f"{p.get('os')}/{p.get('architecture')}"


_LISTS = (OCI_INDEX, DOCKER_LIST)


def digests(ref: str, platforms: tuple[str, ...], *, mirrors: Mapping[str, str] | None = None,
            docker_config: dict[str, Any] | None = None, cas: tuple[str, ...] = ()) -> Digests:
    """The digest of ref's manifest (list) and of its manifest for each platform.

    cas: the PEM text of CA certificates to trust besides the system's (the environment's `certificates`, which a
    TLS-intercepting proxy or a private registry needs).
    """
    r = parse_reference(ref)
    host, session = _connect(r, mirrors, docker_config, cas)
    what = f"image {ref}"
    top, data, kind = _manifest(session, r.digest or r.tag or "latest", what)
    if r.digest and top != r.digest:
        raise RegistryError(f"registry {host} sent content that does not match the digest of {ref}")
    if kind in _LISTS:
        found = _from_index(data, platforms)
    else:
        found = _from_single(session, data, top, platforms, host, what)
    missing = [p for p in platforms if p not in found]
    if missing:
        have = ", ".join(sorted(_index_platforms(data))) if kind in _LISTS else ""
        raise RegistryError(f"image {ref} has no manifest for {', '.join(missing)}"
                            + (f" (it has {have})" if have else ""))
    return Digests(digest=top, platforms=tuple(sorted(found.items())))


def _connect(r: Reference, mirrors: Mapping[str, str] | None, docker_config: dict[str, Any] | None,
             cas: tuple[str, ...]) -> tuple[str, _Session]:
    """The host to ask (the registry's mirror, when it has one) and a session with the credentials for it."""
    chosen = mirrors if mirrors is not None else mirrors_from_env()
    host = chosen.get(r.registry) or r.api_host
    creds = credentials(host.partition("://")[2] or host if host in chosen.values() else r.registry, docker_config)
    return host, _Session(r, host, creds, cas)


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    """An index's manifest entries (those that are objects)."""
    return [e for e in data.get("manifests") or [] if isinstance(e, dict)]


def _index_platforms(data: dict[str, Any]) -> set[str]:
    return {p for p in (_platform_of(e) for e in _entries(data)) if p}


def _from_index(data: dict[str, Any], platforms: tuple[str, ...]) -> dict[str, str]:
    """The manifest digest for each platform asked for, from an index: its first entry for that platform."""
    found: dict[str, str] = {}
    for entry in _entries(data):
        plat = _platform_of(entry)
        dig = entry.get("digest")
        if plat not in platforms or not isinstance(dig, str) or not _DIGEST.fullmatch(dig):
            continue
        found.setdefault(plat, dig)
    return found


def _from_single(session: _Session, data: dict[str, Any], top: str, platforms: tuple[str, ...], host: str,
                 what: str) -> dict[str, str]:
    """A single manifest is its own platform's digest: the platform is in its config blob."""
    config = data.get("config") or {}
    cdigest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(cdigest, str) or not _DIGEST.fullmatch(cdigest):
        raise RegistryError(f"registry {host} sent a manifest without a config for {what}")
    resp = session.get(f"blobs/{cdigest}", "application/json, */*")
    try:
        cfg = json.loads(resp.body) if resp.status == 200 else {}
    except ValueError:
        cfg = {}
    plat = f"{cfg.get('os')}/{cfg.get('architecture')}" if isinstance(cfg, dict) else ""
    return {plat: top} if plat in platforms else {}


__all__ = ["Reference", "Digests", "RegistryError", "Unreachable", "parse_reference", "digests", "credentials", "mirrors_from_env",
           "MIRRORS_ENV"]
