"""The `docker` backend: a Docker engine, local or remote, driven through the docker SDK."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import string
import tempfile
import threading
import warnings
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

import docker
import urllib3.exceptions
from docker.errors import APIError, DockerException, ImageNotFound, NotFound, TLSParameterError
from docker.tls import TLSConfig

from .. import engine_url
from ..errors import BuildError, UsageError
from .base import IMAGE_LABEL, KEY_LABEL, PROJECT_LABEL, Cancelled, Endpoint, ImageFailed, Job, Progress, Report
from .context import Snapshot

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
RUNNING = re.compile(r" ---> Running in ([0-9a-f]{12,64})\Z")  # the classic builder's container for a step
REMOVED = re.compile(r"Removing intermediate container ([0-9a-f]{12,64})\Z")  # ... and the engine removed it
# What a connection to an engine that went away raises: requests' errors are OSErrors; urllib3's and
# http.client's (a response cut short) are not. The SDK's own (DockerException, APIError) are handled apart.
GONE = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)
LOG_TAIL = 15
# Docker leaves these build args out of `docker history`, which is why proxies (often with
# credentials in them) travel this way and nothing else does.
PROXY_ARGS = {"http": ("HTTP_PROXY", "http_proxy"), "https": ("HTTPS_PROXY", "https_proxy"),
              "no_proxy": ("NO_PROXY", "no_proxy")}


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "FileNotFoundError" in text or "No such file or directory" in text:
        return "no engine listens there (the socket does not exist)"
    if isinstance(exc, APIError) and exc.explanation:
        text = str(exc.explanation)
    # requests wraps the socket error several layers deep; the innermost words are the useful ones.
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip()
    if "Connection aborted" in text or "Connection refused" in text:
        return "connection refused"
    if "HTTP request to an HTTPS server" in text:
        return "the engine speaks TLS: give the builder a tls: section"
    if "SSLError" in text or "SSL:" in text:
        match = re.search(r"\[SSL: ([A-Z_]+)\]", text)
        return f"TLS failed ({match.group(1) if match else 'handshake'}): the tls files do not match the engine"
    if "paramiko" in text:
        return ("ssh:// engines need the Python package paramiko (pip install paramiko); dockwright then "
                "connects with your ssh client")
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.rstrip(".")


def _broken(exc: BaseException) -> str:
    """Why a connection to the engine failed, in words: the exception's are a nest of reprs."""
    text = str(exc)
    if any(word in text for word in ("Connection broken", "IncompleteRead", "RemoteDisconnected",
                                     "Connection aborted", "reset by peer", "Broken pipe")):
        return "the connection broke"
    return _reason(exc)


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


class DockerBuilder:
    """Builds with the classic builder API; one client per thread, since the SDK's session is not shared safely."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._local = threading.local()
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()
        self._clients: list[docker.DockerClient] = []
        self._build_args = proxy_args(endpoint.proxy)

    # -- connection -------------------------------------------------------------------------------

    def describe(self) -> str:
        if self.endpoint.url:
            return engine_url.shown(self.endpoint.url)
        return engine_url.shown(os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")

    def _tls(self) -> TLSConfig | bool:
        tls = dict(self.endpoint.tls or {})
        if not tls:
            return False
        root = self.endpoint.root

        def path(key: str) -> str | None:
            value = tls.get(key)
            return str(root / str(value)) if value else None

        for item in ("ca", "cert", "key"):
            p = path(item)
            if p and not Path(p).is_file():
                state = "is not a file" if Path(p).exists() else "does not exist"
                raise BuildError(f"cannot reach the Docker engine at {self.describe()} (builder "
                                 f"'{self.endpoint.name}'): its tls {item} file {tls[item]} {state}")
        cert, key, ca = path("cert"), path("key"), path("ca")
        verify = bool(tls.get("verify", True))
        if not verify:  # the builder says so in dockwright.yaml: no warning on every request
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        return TLSConfig(client_cert=(cert, key) if cert and key else None, ca_cert=ca,
                         verify=ca if verify and ca else verify)

    def _new_client(self) -> docker.DockerClient:
        if self.endpoint.url:
            url = self.endpoint.url
            tls = self._tls()
            # A placeholder version, so that the constructor sends no request before trust_env is off.
            kwargs: dict[str, Any] = {"base_url": url, "tls": tls, "timeout": 600, "version": "1.24"}
            if url.startswith("ssh://"):
                kwargs["use_ssh_client"] = True
            client = docker.DockerClient(**kwargs)
            if tls:
                # requests would otherwise verify the engine against REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE,
                # which machines behind a proxy often set, instead of the builder's own tls ca.
                client.api.trust_env = False
            client.api._version = str(client.api.version(api_version=False)["ApiVersion"])
        else:
            try:
                client = docker.from_env(timeout=600)
            except TLSParameterError:
                where = os.environ.get("DOCKER_CERT_PATH") or "~/.docker"
                raise BuildError(
                    f"cannot reach the Docker engine at {self.describe()} (builder '{self.endpoint.name}'): "
                    f"DOCKER_TLS_VERIFY or DOCKER_CERT_PATH is set, but {where} lacks ca.pem, cert.pem or key.pem; "
                    "point DOCKER_CERT_PATH at the folder that holds them, or unset both") from None
        with self._lock:
            self._clients.append(client)
        return client

    @property
    def client(self) -> docker.DockerClient:
        client: docker.DockerClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
        return client

    def connect(self) -> None:
        where = f"{self.describe()} (builder '{self.endpoint.name}')"
        host = os.environ.get("DOCKER_HOST")
        if not self.endpoint.url and host and (why := engine_url.problem(host, bare=True)) is not None:
            raise BuildError(f"DOCKER_HOST={engine_url.shown(host)} is not a Docker engine address: {why}; set it "
                             f"to {engine_url.EXAMPLES}, or unset it for the default socket")
        url_problem = engine_url.problem(self.endpoint.url) if self.endpoint.url else None
        if url_problem is not None:  # compile refuses these; a manifest edited by hand does not
            raise BuildError(f"builder '{self.endpoint.name}' has url {where.split(' (')[0]}, which is not a Docker "
                             f"engine address: {url_problem}")
        try:
            self.client.ping()
        except (DockerException, OSError, ValueError) as exc:
            if not self.endpoint.url:
                hint = "start dockerd, set DOCKER_HOST, or pick another builder with --builder"
            elif self.endpoint.tls:
                hint = "check that the engine listens there and accepts these tls files, or pick another builder"
            else:
                hint = "check that the engine listens there, or pick another builder with --builder"
            raise BuildError(f"cannot reach the Docker engine at {where}: {_reason(exc)}; {hint}") from None

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    # -- an engine that goes away -------------------------------------------------------------------

    def _lost(self, exc: BaseException, when: str, containers: Iterable[str] = (), kind: str = "build",
              **failed: Any) -> ImageFailed:
        """The engine stopped answering: say where and when, and remove the containers dockwright started
        for this image if the engine answers again (or say which are left)."""
        message = (f"lost the Docker engine at {self.describe()} (builder '{self.endpoint.name}') {when}: "
                   f"{_broken(exc)}")
        left = self._remove_containers(list(dict.fromkeys(containers)))
        if left:
            s = "s" if len(left) > 1 else ""
            message += (f"\nits {kind} container{s} {', '.join(left)} could not be removed: the engine does not "
                        f"answer\nhint: docker rm -f {' '.join(left)} once the engine is back")
        return ImageFailed(message, **failed)

    def _remove_containers(self, ids: list[str]) -> list[str]:
        """Remove these containers on a new connection; the ones that could not be removed."""
        if not ids:
            return []
        try:
            client = self._new_client()
        except (DockerException, *GONE):
            return ids
        left = []
        for container in ids:
            try:
                client.api.remove_container(container, force=True)
            except NotFound:
                pass  # gone already (the engine removes a cancelled build's container itself)
            except (DockerException, *GONE):
                left.append(container)
        return left

    @contextlib.contextmanager
    def _answering(self, when: str) -> Iterator[None]:
        """Engine calls inside fail this image with words, not a connection error's repr."""
        try:
            yield
        except (ImageFailed, APIError, DockerException):
            raise
        except GONE as exc:
            raise self._lost(exc, when) from None

    # -- images: what the schedule calls, each failing its image in words when the engine goes away ---

    def base_id(self, ref: str, report: Report, name: str) -> str:
        with self._answering(f"while looking up its parent image {ref}"):
            return self._base_id(ref, report, name)

    def user_of(self, ref: str) -> str:
        with self._answering(f"while looking up its parent image {ref}"):
            return self._user_of(ref)

    def find(self, job: Job, key: str) -> str | None:
        with self._answering("while looking for an image built with the same key"):
            return self._find(job, key)

    def fetch(self, job: Job, key: str, report: Report) -> str | None:
        with self._answering(f"while pulling {job.push_tag}"):
            return self._fetch(job, key, report)

    def tag(self, image_id: str, tag: str) -> None:
        with self._answering(f"while tagging it {tag}"):
            self._tag(image_id, tag)

    def push(self, image_id: str, tag: str, report: Report, name: str) -> str | None:
        with self._answering(f"while pushing it to {tag}"):
            return self._push(image_id, tag, report, name)

    # -- images -----------------------------------------------------------------------------------

    def _base_id(self, ref: str, report: Report, name: str) -> str:
        with self._lock:
            known = self._bases.get(ref)
        if known:
            return known
        try:
            image_id = str(self.client.images.get(ref).id)
        except ImageNotFound:
            report(Progress(name, "pulling", detail=ref))
            try:
                image_id = str(self.client.images.pull(ref).id)
            except (APIError, DockerException) as exc:
                raise ImageFailed(
                    f"parent image {ref} is not on the engine and cannot be pulled: {_reason(exc)}\n"
                    f"hint: pull or load it on the engine, or tag a local image with that name: "
                    f"docker tag <image> {ref}") from None
        with self._lock:
            self._bases[ref] = image_id
        return image_id

    def _user_of(self, ref: str) -> str:
        return str((self.client.images.get(ref).attrs.get("Config") or {}).get("User") or "")

    def _labelled(self, image: Any, key: str) -> bool:
        labels = (image.attrs.get("Config") or {}).get("Labels") or {}
        return bool(labels.get(KEY_LABEL) == key)

    def _find(self, job: Job, key: str) -> str | None:
        try:
            image = self.client.images.get(job.tag)
            if self._labelled(image, key):
                return str(image.id)
        except ImageNotFound:
            pass
        # Images that fail their checks are removed, so any image with the key passed them: also one
        # whose tag has since moved on (going back to an earlier state of the sources reuses it).
        for image in self.client.images.list(all=True, filters={"label": f"{KEY_LABEL}={key}"}):
            self._tag(str(image.id), job.tag)
            return str(image.id)
        return None

    def _fetch(self, job: Job, key: str, report: Report) -> str | None:
        if not job.push_tag:
            return None
        report(Progress(job.name, "pulling", detail=job.push_tag))
        try:
            image = self.client.images.pull(job.push_tag)
        except (APIError, DockerException):
            return None  # not pushed yet: build it
        if not self._labelled(image, key):
            return None
        self._tag(str(image.id), job.tag)
        return str(image.id)

    def build(self, job: Job, key: str, snap: Snapshot, *, fresh: bool, report: Report,
              cancel: threading.Event) -> str:
        labels = {KEY_LABEL: key, IMAGE_LABEL: job.name, PROJECT_LABEL: job.project}
        log: deque[str] = deque(maxlen=LOG_TAIL)
        step: int | None = None
        image_id: str | None = None
        containers: list[str] = []  # the classic builder's containers for RUN steps, to clean up if it goes away
        with tempfile.TemporaryFile() as tar:
            snap.write_tar(tar)
            try:
                stream: Iterable[dict[str, Any]] = self.client.api.build(
                    fileobj=tar, custom_context=True, dockerfile=snap.dockerfile, rm=True, forcerm=True,
                    pull=False, nocache=fresh, labels=labels, buildargs=dict(self._build_args), decode=True,
                    network_mode=self.endpoint.network)
                for chunk in stream:
                    if cancel.is_set():
                        raise Cancelled()
                    if "error" in chunk:
                        detail = chunk.get("errorDetail") or {}
                        message = str(detail.get("message") or chunk["error"]).strip()
                        raise ImageFailed(message, step=step, log=list(log))
                    aux = chunk.get("aux")
                    if isinstance(aux, dict) and aux.get("ID"):
                        image_id = str(aux["ID"])
                    text = chunk.get("stream")
                    if not isinstance(text, str):
                        continue
                    for line in text.splitlines():
                        line = line.rstrip()
                        if not line:
                            continue
                        running, removed = RUNNING.match(line), REMOVED.match(line)
                        if running:
                            containers.append(running.group(1))
                        elif removed and removed.group(1) in containers:
                            containers.remove(removed.group(1))
                        m = STEP.match(line)
                        if m:
                            step = int(m.group(1))
                            log.clear()  # what matters is the output of the step that failed
                            report(Progress(job.name, "building", int(m.group(1)), int(m.group(2)), m.group(3)))
                        elif not line.startswith((" ---> ", "Removing intermediate", "Successfully built ")):
                            log.append(line)
                            report(Progress(job.name, "output", detail=line))
                        done = re.match(r"^Successfully built ([0-9a-f]+)$", line)
                        if done and image_id is None:
                            image_id = done.group(1)
            except (APIError, DockerException) as exc:
                raise ImageFailed(f"the engine refused the build: {_reason(exc)}", step=step,
                                  log=list(log)) from None
            except GONE as exc:
                raise self._lost(exc, "during the build", containers, step=step, log=list(log)) from None
        if image_id is None:
            try:
                self.client.ping()
            except (DockerException, *GONE) as exc:  # the stream ended because the engine went away
                raise self._lost(exc, "during the build", containers, step=step, log=list(log)) from None
            raise ImageFailed("the engine ended the build without an image", step=step, log=list(log))
        return image_id

    def check(self, image_id: str, command: str, cancel: threading.Event) -> tuple[int, list[str]]:
        with self._answering("while starting a check"):
            container = self.client.containers.create(image_id, entrypoint=["/bin/sh", "-c"], command=[command],
                                                      detach=True, network_disabled=False)
        try:
            container.start()
            while True:
                if cancel.is_set():
                    raise Cancelled()
                try:
                    result = container.wait(timeout=1)
                    break
                except Exception as exc:  # the SDK raises requests' ReadTimeout: keep waiting
                    if "timed out" not in str(exc).lower():
                        raise
            output = container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
            return int(result.get("StatusCode", 1)), output.splitlines()
        except GONE as exc:
            if isinstance(exc, APIError):
                raise
            raise self._lost(exc, f"during the check {command}", [container.id], kind="check") from None
        finally:
            try:
                container.remove(force=True)
            except (NotFound, APIError, *GONE):
                pass  # an engine that went away: _lost removed it on a new connection, or said it could not

    def _tag(self, image_id: str, tag: str) -> None:
        repository, _, name = tag.rpartition(":")
        self.client.api.tag(image_id, repository, name, force=True)

    def discard(self, image_id: str) -> None:
        try:
            self.client.images.remove(image_id, force=True, noprune=False)
        except (NotFound, APIError, DockerException, *GONE):
            pass  # not there, or the engine went away: what failed the image already says so

    def _push(self, image_id: str, tag: str, report: Report, name: str) -> str | None:
        self._tag(image_id, tag)
        repository, _, version = tag.rpartition(":")
        report(Progress(name, "pushing", detail=tag))
        digest = None
        try:
            for chunk in self.client.api.push(repository, version, stream=True, decode=True):
                if "error" in chunk:
                    raise ImageFailed(f"push to {tag} failed: {str(chunk['error']).strip()}")
                aux = chunk.get("aux") if isinstance(chunk, dict) else None
                found = aux.get("Digest") if isinstance(aux, dict) else None
                if isinstance(found, str) and _DIGEST.fullmatch(found):
                    digest = found  # the engine's last word on the push: the manifest's digest
        except (APIError, DockerException) as exc:
            raise ImageFailed(f"push to {tag} failed: {_reason(exc)}") from None
        return digest
