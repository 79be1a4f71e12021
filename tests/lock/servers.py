"""A PEP 691 JSON package index of wheels and sdists the tests generate, and a small Registry API v2 server
that speaks Docker Hub's anonymous/basic token flow: both on 127.0.0.1, in a thread, real HTTP."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import ssl
import json
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Dist:
    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    tags: tuple[str, ...] = ("py3-none-any",)  # one wheel per tag
    sdist: bool = False
    wheels: bool = True
    yanked: bool = False
    padding: int = 0  # bytes of incompressible data, to make a wheel big


def _metadata(d: Dist, version: str = "2.1") -> str:
    lines = [f"Metadata-Version: {version}", f"Name: {d.name}", f"Version: {d.version}"]
    lines += [f"Provides-Extra: {e}" for e in d.extras]
    lines += [f"Requires-Dist: {r}" for r in d.requires]
    return "\n".join(lines) + "\n\n"


def wheel(d: Dist, tag: str) -> bytes:
    mod = d.name.replace("-", "_")
    info = f"{mod}-{d.version}.dist-info"
    files = {f"{mod}/__init__.py": f"VERSION = {d.version!r}\n".encode(),
             f"{info}/METADATA": _metadata(d).encode(),
             f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: dockwright-tests\nRoot-Is-Purelib: "
                              f"{'true' if tag.endswith('any') else 'false'}\nTag: {tag}\n".encode()}
    if d.padding:
        files[f"{mod}/blob.bin"] = hashlib.shake_256(d.name.encode()).digest(d.padding)
    record = "".join(f"{p},,\n" for p in files) + f"{info}/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p, data in files.items():
            info_ = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            z.writestr(info_, data)
        z.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)), record)
    return buf.getvalue()


def sdist(d: Dist) -> bytes:
    base = f"{d.name.replace('-', '_')}-{d.version}"
    files = {f"{base}/PKG-INFO": _metadata(d, "2.2").encode(),
             f"{base}/pyproject.toml": b'[build-system]\nrequires = ["flit_core"]\n'
                                       b'build-backend = "flit_core.buildapi"\n'}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for p, data in files.items():
            info = tarfile.TarInfo(p)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        # serve_forever starts after a subclass has wrapped the socket (TLS): see start().
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Index(_Server):
    """http://127.0.0.1:PORT/simple/: PEP 691 JSON with sha256 hashes, sizes (PEP 700) and yanked flags.

    tls: (certificate, key) files to serve HTTPS instead; reject: answer every request with this HTTP status.
    """

    def __init__(self, *, tls: tuple[Path, Path] | None = None, reject: int | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        self.auth = auth  # (user, password): every request needs them (HTTP basic), else 401
        self.authorized: list[str] = []  # the paths asked for with the right credentials
        self.files: dict[str, bytes] = {}
        self.projects: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.reject = reject
        self.scheme = "https" if tls else "http"
        super().__init__(_IndexHandler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/simple"

    def add(self, *dists: Dist) -> None:
        for d in dists:
            names = []
            if d.wheels:
                for tag in d.tags:
                    names.append((f"{d.name.replace('-', '_')}-{d.version}-{tag}.whl", wheel(d, tag)))
            if d.sdist:
                names.append((f"{d.name.replace('-', '_')}-{d.version}.tar.gz", sdist(d)))
            for fname, data in names:
                self.files[fname] = data
                self.projects.setdefault(d.name, []).append({
                    "filename": fname, "url": f"/files/{fname}", "size": len(data),
                    "hashes": {"sha256": hashlib.sha256(data).hexdigest()}, "yanked": d.yanked})

    def tamper(self, fname: str, data: bytes) -> None:
        self.files[fname] = data


class _IndexHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._get(body=True)

    def do_HEAD(self) -> None:
        self._get(body=False)

    def _get(self, body: bool) -> None:
        self.body = body
        index: Index = self.server.owner  # type: ignore[attr-defined]
        index.requests.append(self.path)
        if index.reject is not None:
            return self._send(index.reject, b"go away", "text/plain")
        if index.auth is not None:
            token = base64.b64encode(":".join(index.auth).encode()).decode()
            if self.headers.get("Authorization") != f"Basic {token}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            index.authorized.append(self.path)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts[:1] == ["simple"] and len(parts) == 2:
            name = parts[1]
            if name not in index.projects:
                return self._send(404, b"not found", "text/plain")
            body = {"meta": {"api-version": "1.1"}, "name": name, "files": index.projects[name],
                    "versions": sorted({f["filename"].split("-")[1] for f in index.projects[name]})}
            return self._send(200, json.dumps(body).encode(), "application/vnd.pypi.simple.v1+json")
        if parts[:1] == ["files"] and len(parts) == 2 and parts[1] in index.files:
            return self._send(200, index.files[parts[1]], "application/octet-stream")
        self._send(404, b"not found", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=0, must-revalidate")
        self.end_headers()
        if getattr(self, "body", True):
            self.wfile.write(body)


OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


@dataclass
class Registry(_Server):
    """Registry API v2 with the bearer token flow: /v2/<repo>/manifests/<ref>, /token."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    private: dict[str, tuple[str, str]] = field(default_factory=dict)  # repo -> (user, password)
    requests: list[str] = field(default_factory=list)
    tls: tuple[Path, Path] | None = None  # (certificate, key): serve HTTPS

    def __post_init__(self) -> None:
        super().__init__(_RegistryHandler)
        self.scheme = "http"
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def push(self, repo: str, tag: str, platforms: tuple[str, ...], *, salt: str = "") -> str:
        """An index of one tiny manifest per platform (a single manifest when platforms has one and no index)."""
        entries = []
        for plat in platforms:
            os_, arch = plat.split("/")
            cdig, cfg = _blob(json.dumps({"os": os_, "architecture": arch, "salt": salt}).encode())
            ldig, layer = _blob(f"{repo}{plat}{salt}".encode())
            self.blobs[cdig], self.blobs[ldig] = cfg, layer
            man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig,
                                         "size": len(cfg)},
                              "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ldig,
                                          "size": len(layer)}]}).encode()
            mdig = "sha256:" + hashlib.sha256(man).hexdigest()
            self.manifests[(repo, mdig)] = (man, OCI_MANIFEST)
            entries.append({"mediaType": OCI_MANIFEST, "digest": mdig, "size": len(man),
                            "platform": {"os": os_, "architecture": arch}})
        idx = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        idig = "sha256:" + hashlib.sha256(idx).hexdigest()
        self.manifests[(repo, tag)] = (idx, OCI_INDEX)
        self.manifests[(repo, idig)] = (idx, OCI_INDEX)
        return idig

    def token_for(self, repo: str) -> str:
        return base64.b64encode(f"token:{repo}".encode()).decode()


class _RegistryHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        reg: Registry = self.server.owner  # type: ignore[attr-defined]
        reg.requests.append(self.path)
        path = self.path.split("?")[0]
        if path == "/token":
            query = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&")) if "?" in self.path else {}
            scope = query.get("scope", "").replace("%3A", ":").replace("%2F", "/")
            repo = scope.split(":")[1] if scope.count(":") >= 2 else ""
            if repo in reg.private:
                user, password = reg.private[repo]
                want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', "application/json")
            return self._send(200, json.dumps({"token": reg.token_for(repo)}).encode(), "application/json")
        if not path.startswith("/v2/"):
            return self._send(404, b"", "text/plain")
        rest = path[len("/v2/"):]
        kind = "manifests" if "/manifests/" in rest else "blobs" if "/blobs/" in rest else ""
        if not kind:
            return self._send(200, b"{}", "application/json")
        repo, ref = rest.split(f"/{kind}/")
        if self.headers.get("Authorization") != f"Bearer {reg.token_for(repo)}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{reg.scheme}://{reg.host}/token",'
                                                 'service="test-registry",'
                                                 f'scope="repository:{repo}:pull"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind == "blobs":
            if ref not in reg.blobs:
                return self._send(404, b"", "application/json")
            return self._send(200, reg.blobs[ref], "application/octet-stream")
        found = reg.manifests.get((repo, ref))
        if found is None:
            return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json")
        self._send(200, found[0], found[1])

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def docker_config(folder: Path, host: str, user: str, password: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}), encoding="utf-8")
    return folder


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it, with openssl: (ca.pem, cert.pem, key.pem)."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, csr, ext = folder / "cert.pem", folder / "key.pem", folder / "cert.csr", folder / "ext.cnf"

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=dockwright test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(ext))
    return ca, cert, key
