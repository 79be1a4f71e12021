"""The `docker` backend: a Docker engine, local or remote, driven through the docker SDK."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import re
import secrets
import socket
import struct
import tempfile
import threading
import time
import warnings
from collections import deque
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import docker
import urllib3.exceptions
from docker.errors import APIError, DockerException, ImageNotFound, NotFound, TLSParameterError
from docker.tls import TLSConfig
from docker.types import Ulimit

from .. import engine_url
from ..errors import BuildError, regular_inside
from .base import (IMAGE_LABEL, KEY_LABEL, PROJECT_LABEL, Cancelled, Endpoint, ImageFailed, Job, Progress, Report,
                   loopback, proxy_args, secret_path)
from .context import Snapshot, instructions

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
PODMAN_STEP = re.compile(r"STEP (\d+)/(\d+): (.*)\Z")
PODMAN_RUN_FAILED = re.compile(r'building at STEP ".*": (?:while running runtime: )?exit status (\d+)\s*\Z', re.DOTALL)
PODMAN_SOCKET = "unix:///run/podman/podman.sock"
BARE_ID = re.compile(r"[0-9a-f]{64}")
RUNNING = re.compile(r" ---> Running in ([0-9a-f]{12,64})\Z")  # the classic builder's container for a step
REMOVED = re.compile(r"Removing intermediate container ([0-9a-f]{12,64})\Z")  # ... and the engine removed it
# What a connection to an engine that went away raises: requests' errors are OSErrors; urllib3's and
# http.client's (a response cut short) are not. The SDK's own (DockerException, APIError) are handled apart.
GONE = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)
LOG_TAIL = 15
REMOVE_SECONDS = 6  # how long the containers of a lost build are tried to be removed


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


# A connection cut in the middle of an answer, by the kind of exception (requests, urllib3, http.client and the OS
# each name it their own way, and nest one in another): by name, so that no library is imported for it.
_BROKEN_KINDS = frozenset({"ChunkedEncodingError", "ProtocolError", "IncompleteRead", "RemoteDisconnected",
                           "ConnectionResetError", "ConnectionAbortedError", "BrokenPipeError"})


def _nested(exc: BaseException) -> Iterable[BaseException]:
    """exc and every exception inside it: its cause, its context and its arguments, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__, *current.args) if isinstance(e, BaseException)]


def _broken(exc: BaseException) -> str:
    """Why a connection to the engine failed, in words: the exception's are a nest of reprs."""
    text = str(exc)
    if any(type(e).__name__ in _BROKEN_KINDS for e in _nested(exc)) or any(
            word in text for word in ("Connection broken", "IncompleteRead", "RemoteDisconnected", "Connection aborted",
                                      "reset by peer", "Broken pipe", "Response ended prematurely")):
        return "the connection broke"
    return _reason(exc)


# The docker SDK's private names, each used in one place. The SDK has no public way to give a client the API
# version it already asked for (a thread's new client would ask again), nor to call an endpoint it does not
# wrap (podman's libpod pull and push, which take tlsVerify); these follow docker 7.x's APIClient.
def _set_api_version(client: docker.DockerClient, version: str) -> None:
    """Make client speak version, as `version="auto"` would after asking the engine (docker 7.x: _version)."""
    client.api._version = version


def _post_stream(client: docker.DockerClient, path: str, *args: str, params: dict[str, Any],
                 context: IO[bytes] | None = None) -> Iterable[dict[str, Any]]:
    """POST to an engine endpoint the SDK does not wrap; its decoded JSON progress messages (docker 7.x:
    _post, _url, _raise_for_status, _stream_helper). A build `context` (a tar) is the body, sent as the SDK's
    build sends it: with the registry auth headers, and no read timeout."""
    api = client.api
    if context is not None:
        headers = {"Content-Type": "application/x-tar"}
        api._set_auth_headers(headers)
        response = api._post(api._url(path, *args), params=params, data=context, headers=headers, stream=True,
                             timeout=None)
    else:
        response = api._post(api._url(path, *args), params=params, stream=True)
    api._raise_for_status(response)
    chunks: Iterable[dict[str, Any]] = api._stream_helper(response, decode=True)
    return chunks


class _BuildStream:
    """What the build API's stream says, one chunk at a time: the step, the log tail, the image ID, the classic
    builder's containers still there (to clean up if the engine goes away); progress goes to report."""

    def __init__(self, builder: DockerBuilder, job: Job, steps: int, report: Report) -> None:
        self.builder, self.job, self.steps, self.report = builder, job, steps, report
        self.log: deque[str] = deque(maxlen=LOG_TAIL)
        self.step: int | None = None
        self.image_id: str | None = None
        self.containers: list[str] = []

    def chunk(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = self.builder.error_words(str(detail.get("message") or chunk["error"]).strip())
            raise ImageFailed(message, step=self.step, log=list(self.log))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        text = chunk.get("stream")
        if isinstance(text, str):
            for line in text.split("\n"):
                line = line.rstrip()
                if line:
                    self.line(line)

    def line(self, line: str) -> None:
        running, removed = RUNNING.match(line), REMOVED.match(line)
        if running:
            self.containers.append(running.group(1))
        elif removed and removed.group(1) in self.containers:
            self.containers.remove(removed.group(1))
        m = self.builder.step_line.match(line)
        hidden = self.builder.label_steps_hidden
        if m and hidden and int(m.group(1)) > self.steps:
            return  # podman's step for the labels, which the Dockerfile does not have
        if m:
            self.step = int(m.group(1))
            self.log.clear()  # what matters is the output of the step that failed
            total = self.steps if hidden else int(m.group(2))
            self.report(Progress(self.job.name, "building", int(m.group(1)), total, m.group(3)))
        elif not self.builder.noise(line):
            self.log.append(line)
            self.report(Progress(self.job.name, "output", detail=line))
        done = re.match(r"^Successfully built ([0-9a-f]+)$", line)
        if done and self.image_id is None:
            self.image_id = done.group(1)


class DockerBuilder:
    # The classic builder of the engine API (what the docker SDK's build speaks) has no RUN --mount.
    features: frozenset[str] = frozenset()
    """Builds with the classic builder API; one client per thread, since the SDK's session is not shared safely."""

    step_line = STEP
    # dockerd shows the labels as steps of their own (LABEL a=b, one per label) after the Dockerfile's: kept,
    # as always; podman's one step for them is hidden
    label_steps_hidden = False

    def noise(self, line: str) -> bool:
        """A line of the build stream that is the engine's bookkeeping, not the build's output."""
        return line.startswith((" ---> ", "Removing intermediate", "Successfully built "))

    def error_words(self, message: str) -> str:
        return message

    def check_options(self) -> dict[str, Any]:
        return {}

    def start_failed(self, exc: APIError) -> str:
        return f"the engine could not start the check's container: {_reason(exc)}"

    def _registry_params(self, ref: str) -> dict[str, str]:
        return {}

    def _pull(self, ref: str) -> Any:
        """Pull an image by reference; the SDK's Image. APIError / DockerException when it cannot."""
        if not self._registry_params(ref):
            return self.client.images.pull(ref)
        # podman's compat pull ignores tlsVerify; its own (libpod) pull, on the same socket, takes it
        for chunk in _post_stream(self.client, "/libpod/images/pull",
                                  params={"reference": ref, **self._registry_params(ref)}):
            if "error" in chunk:
                raise DockerException(str(chunk["error"]).strip())
        return self.client.images.get(ref)

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._local = threading.local()
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()
        self._clients: list[docker.DockerClient] = []
        self._build_args = proxy_args(endpoint.proxy)
        self._api_version: str | None = None

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
            """The file, resolved: inside the project, a regular file (never a FIFO that would hang TLS)."""
            value = tls.get(key)
            if not value:
                return None
            try:
                return regular_inside(root / str(value), root)
            except FileNotFoundError:
                state = "does not exist"
            except IsADirectoryError:
                state = "is not a file"
            except OSError as exc:  # a FIFO, a device, or a symbolic link out of the project
                state = str(exc.strerror).removeprefix("it ")
            raise BuildError(f"cannot reach the Docker engine at {self.describe()} (builder "
                             f"'{self.endpoint.name}'): its tls {key} file {value} {state}")

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
            # Asked once per builder, not per thread's client: podman answers /version in about 0.6 s.
            with self._lock:
                known = self._api_version
            if known is None:
                known = str(client.api.version(api_version=False)["ApiVersion"])
                with self._lock:
                    self._api_version = known
            _set_api_version(client, known)
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
        return ImageFailed(message, engine_down=True, **failed)

    def _remove_containers(self, ids: list[str]) -> list[str]:
        """Remove these containers on a new connection; the ones that could not be removed. An engine that
        is busy right after a connection broke gets a few more tries, within REMOVE_SECONDS."""
        left = ids
        deadline = time.monotonic() + REMOVE_SECONDS
        while left:
            left = self._remove_once(left)
            if not left or time.monotonic() + 1 > deadline:
                return left
            time.sleep(1)
        return left

    def _remove_once(self, ids: list[str]) -> list[str]:
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

    def digests(self, ref: str) -> set[str]:
        with self._answering(f"while looking up its parent image {ref}"):
            try:
                repo = self.client.images.get(ref).attrs.get("RepoDigests") or []
            except ImageNotFound:
                return set()
            return {str(d).rpartition("@")[2] for d in repo if "@" in str(d)}

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
                image_id = str(self._pull(ref).id)
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
            image = self._pull(job.push_tag)
        except (APIError, DockerException):
            return None  # not pushed yet: build it
        if not self._labelled(image, key):
            return None
        self._tag(str(image.id), job.tag)
        return str(image.id)

    def build(self, job: Job, key: str, snap: Snapshot, *, fresh: bool, report: Report,
              cancel: threading.Event) -> str:
        labels = {KEY_LABEL: key, IMAGE_LABEL: job.name, PROJECT_LABEL: job.project}
        seen = _BuildStream(self, job, len(instructions(snap.dockerfile_bytes)), report)
        with tempfile.TemporaryFile() as tar:
            try:
                stream = self._start_build(job, snap, tar, fresh=fresh, labels=labels)
                for chunk in stream:
                    if cancel.is_set():
                        raise Cancelled()
                    seen.chunk(chunk)
            except (APIError, DockerException) as exc:
                raise ImageFailed(f"the engine refused the build: {_reason(exc)}", step=seen.step,
                                  log=list(seen.log)) from None
            except GONE as exc:
                raise self._lost(exc, "during the build", seen.containers, step=seen.step, log=list(seen.log)) \
                    from None
        if seen.image_id is None:
            try:
                self.client.ping()
            except (DockerException, *GONE) as exc:  # the stream ended because the engine went away
                raise self._lost(exc, "during the build", seen.containers, step=seen.step,
                                 log=list(seen.log)) from None
            raise ImageFailed("the engine ended the build without an image", step=seen.step, log=list(seen.log))
        return seen.image_id

    def _start_build(self, job: Job, snap: Snapshot, tar: IO[bytes], *, fresh: bool,
                     labels: dict[str, str]) -> Iterable[dict[str, Any]]:
        """Send the context (written into tar) and start the build; the engine's progress messages."""
        snap.write_tar(tar)
        stream: Iterable[dict[str, Any]] = self.client.api.build(
            fileobj=tar, custom_context=True, dockerfile=snap.dockerfile, rm=True, forcerm=True,
            pull=False, nocache=fresh, labels=labels, buildargs=dict(self._build_args), decode=True,
            network_mode=self.endpoint.network)
        return stream

    def check(self, image_id: str, command: str, cancel: threading.Event) -> tuple[int, list[str]]:
        with self._answering("while starting a check"):
            container = self.client.containers.create(image_id, entrypoint=["/bin/sh", "-c"], command=[command],
                                                      detach=True, network_disabled=False, **self.check_options())
        try:
            try:
                container.start()
            except APIError as exc:
                raise ImageFailed(self.start_failed(exc)) from None
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
            return int(result.get("StatusCode", 1)), output.rstrip("\n").split("\n") if output else []
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
            params = self._registry_params(tag)
            if params:
                chunks: Iterable[dict[str, Any]] = _post_stream(self.client, "/images/{0}/push", repository,
                                                                params={"tag": version, **params})
            else:
                chunks = self.client.api.push(repository, version, stream=True, decode=True)
            for chunk in chunks:
                if "error" in chunk:
                    raise ImageFailed(f"push to {tag} failed: {str(chunk['error']).strip()}")
                aux = chunk.get("aux") if isinstance(chunk, dict) else None
                found = aux.get("Digest") if isinstance(aux, dict) else None
                if isinstance(found, str) and _DIGEST.fullmatch(found):
                    digest = found  # the engine's last word on the push: the manifest's digest
        except (APIError, DockerException) as exc:
            raise ImageFailed(f"push to {tag} failed: {_reason(exc)}") from None
        return digest


def service_limits(url: str) -> list[tuple[str, tuple[int, int]]]:
    """The nproc and nofile limits of the process serving a unix socket on this machine (its peer credentials
    name it; /proc/<pid>/limits says them): what a container it starts may have at most. None known: []."""
    if not url.startswith("unix://") or not hasattr(socket, "SO_PEERCRED"):
        return []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(url[len("unix://"):])
            pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[0]
        text = Path(f"/proc/{pid}/limits").read_text()
    except (OSError, struct.error):
        return []
    found = []
    for name, title in (("nproc", "Max processes"), ("nofile", "Max open files")):
        m = re.search(rf"^{title}\s+(\d+)\s+(\d+)\s", text, re.MULTILINE)
        if m:
            found.append((name, (int(m.group(1)), int(m.group(2)))))
    return found


def _secret_bytes(root: Path, secret_id: str, kind: str, where: str) -> bytes:
    """A build secret's exact bytes on this machine (a variable's value, a file's content)."""
    try:
        if kind == "env":
            return os.environ[where].encode("utf-8", "surrogateescape")
        return secret_path(root, where).read_bytes()
    except KeyError:  # checked before the build started; unset since
        raise ImageFailed(f"secret '{secret_id}' is read from the environment variable {where}, which is not "
                          "set") from None
    except OSError as exc:
        raise ImageFailed(f"secret '{secret_id}' is read from the file {where}, which cannot be read: "
                          f"{exc.strerror or exc}") from None


class PodmanBuilder(DockerBuilder):
    """podman's Docker-compatible API (`podman system service`), through the same SDK. Where podman differs
    from dockerd, on purpose (each pinned by tests/builders/test_podman.py):

    - no url: podman's rootful default socket, not DOCKER_HOST or docker.sock;
    - its build stream says `STEP 2/4: RUN ...`, not `Step 2/4 : RUN ...`; it adds one last step for the
      labels, which is not shown; `--> <id>`, `COMMIT` and the bare image ID are bookkeeping, not output;
    - a failing RUN is `building at STEP "RUN ...": while running runtime: exit status N`: reported as
      "the command returned a non-zero code: N", as the buildah backend does;
    - image IDs carry `sha256:` as dockerd's do (nothing to change), and equal dockerd's and buildah's for the
      same image (the digest of its config), so build keys agree;
    - a container gets podman's own default limits (RLIMIT_NPROC 4194304 for root), which a machine or CI
      container with a lower hard limit refuses: the check's container gets this machine's nproc and nofile
      limits when the engine is on this machine (a unix socket: the service's own limits, read through
      its peer credentials); a remote podman needs `default_ulimits` in
      its containers.conf, which the error then says;
    - it refuses plain HTTP to a registry on the loopback address, which dockerd allows by default: pushes to
      127.0.0.0/8, localhost or ::1 pass `tlsVerify=false`, which its compat push accepts; its compat pull
      ignores it, so pulls from there go through its own API (/libpod/images/pull) on the same socket;
    - its /version answers slowly (about 0.6 s): the API version is fixed at 1.41, which it serves;
    - `RepoDigests` of a local image name a digest even when it was never pushed: not used as a registry digest.
    """

    # podman builds with buildah behind its API: RUN --mount=type=cache works, and so do build secrets, which its
    # /build takes (since podman 4.0; podman-remote sends them so) as files in the context tar named by a
    # `secrets` parameter (`["id=ID,src=NAME"]`): it moves each file out of the context directory before the
    # build, mounts it at /run/secrets/ID for the RUN steps that ask, and removes it with the context after.
    # The docker SDK's build has no such parameter: a build with secrets is one request of our own.
    features = frozenset({"mounts", "secrets"})

    step_line = PODMAN_STEP
    label_steps_hidden = True

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(dataclasses.replace(endpoint, url=endpoint.url or PODMAN_SOCKET))
        self._ulimits: list[tuple[str, tuple[int, int]]] | None = None
        # podman's compat API is 1.41 (podman 4 and 5) and takes any version in the path; asking /version costs
        # about 0.6 s, a third of a no-op build's budget
        self._api_version = "1.41"

    def _start_build(self, job: Job, snap: Snapshot, tar: IO[bytes], *, fresh: bool,
                     labels: dict[str, str]) -> Iterable[dict[str, Any]]:
        if not job.secrets:
            return super()._start_build(job, snap, tar, fresh=fresh, labels=labels)
        # A fresh name per build, beside the context's files (podman moves it next to the context directory,
        # so a name with a folder in it would not move); never a name the context has.
        token = secrets.token_hex(8)
        files = {f".dockwright-secret-{token}-{secret_id}": _secret_bytes(self.endpoint.root, secret_id, kind, where)
                 for secret_id, kind, where in job.secrets}
        snap.write_tar(tar, extra=files)
        params: dict[str, Any] = {
            "dockerfile": snap.dockerfile, "rm": True, "forcerm": True, "pull": False, "nocache": fresh,
            "labels": json.dumps(labels), "buildargs": json.dumps(dict(self._build_args)),
            "secrets": json.dumps([f"id={secret_id},src={name}"
                                   for name, (secret_id, _, _) in zip(files, job.secrets)])}
        if self.endpoint.network:
            params["networkmode"] = self.endpoint.network
        return _post_stream(self.client, "/build", params=params, context=tar)

    def noise(self, line: str) -> bool:
        return line.startswith(("--> ", "COMMIT", "Successfully built ", "Successfully tagged ")) or bool(
            BARE_ID.fullmatch(line))

    def error_words(self, message: str) -> str:
        m = PODMAN_RUN_FAILED.match(message)
        return f"the command returned a non-zero code: {m.group(1)}" if m else message

    def check_options(self) -> dict[str, Any]:
        with self._lock:
            if self._ulimits is None:
                self._ulimits = service_limits(self.endpoint.url or "")
            limits = self._ulimits
        return {"ulimits": [Ulimit(name=n, soft=soft, hard=hard) for n, (soft, hard) in limits]} if limits else {}

    def start_failed(self, exc: APIError) -> str:
        why = _reason(exc)
        if "rlimit" in why:
            return (f"podman could not start the check's container: {why}\nhint: podman gives containers "
                    "higher limits than its machine allows; set default_ulimits (e.g. nproc=65535:65535) in the "
                    "[containers] section of that machine's containers.conf")
        return super().start_failed(exc)

    def _registry_params(self, ref: str) -> dict[str, str]:
        return {"tlsVerify": "false"} if loopback(ref) else {}
