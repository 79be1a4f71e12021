"""A caching HTTP proxy on 127.0.0.1 for the example builds: every engine installs the examples' packages from
this machine's disk instead of downloading them again.

Build containers reach it through the builder's `proxy:` (Docker's predefined proxy build args) and
`network: host`. Plain HTTP (apt's Debian mirror) is answered from the cache, filled on a miss. HTTPS to the
package hosts (pypi.org, files.pythonhosted.org) is opened here (CONNECT, then TLS with a certificate of a test
CA that the copied example trusts through its `certificates:` file), answered from the cache, filled from the
real host on a miss; any other host is tunnelled as it is. So the examples' Dockerfiles, locks and outputs stay
exactly as committed: only the builder and the CA file of the copy differ.

The cache lives in CACHE_DIR/package-proxy (one file per URL and Accept header). Package files (wheels, .debs)
never change under their URL and are kept; index pages and apt's lists are fetched again after a day.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

INTERCEPTED = ("pypi.org", "files.pythonhosted.org")
INDEX_SECONDS = 24 * 3600  # index pages and apt lists older than this are fetched again
IMMUTABLE = ("/packages/", ".whl", ".deb", ".tar.gz", ".zip", ".metadata")
KEPT_HEADERS = ("Content-Type", "Last-Modified", "ETag")


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and one certificate for INTERCEPTED signed by it, made once with openssl: (ca, cert, key)."""
    ca, cert, key = (folder / n for n in ("ca.pem", "cert.pem", "key.pem"))
    if all(p.is_file() for p in (ca, cert, key)):
        return ca, cert, key
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".certs-", dir=folder))

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=120, cwd=work)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "3650",
        "-subj", "/CN=dockwright test package proxy CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.csr", "-subj", f"/CN={INTERCEPTED[0]}")
    names = ",".join(f"DNS:{host}" for host in INTERCEPTED)
    (work / "ext.cnf").write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
        "-out", "cert.pem", "-days", "3650", "-extfile", "ext.cnf")
    for name in ("ca-key.pem", "key.pem", "cert.pem", "ca.pem"):  # ca.pem last: it says the set is whole
        (work / name).replace(folder / name)
    shutil.rmtree(work, ignore_errors=True)
    return ca, cert, key


class PackageProxy:
    """http://127.0.0.1:PORT, in a thread. `fetched` lists the URLs it had to get from the network, `served` those
    it answered from the cache, `tunnelled` the other hosts it passed through."""

    def __init__(self, cache: Path, upstream_ca: Path) -> None:
        self.cache = cache
        self.cache.mkdir(parents=True, exist_ok=True)
        ca, cert, key = certificates(cache / "tls")
        self.ca = ca
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(str(cert), str(key))
        self.upstream = ssl.create_default_context(cafile=str(upstream_ca))
        self.fetched: list[str] = []
        self.served: list[str] = []
        self.tunnelled: list[str] = []
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, url: str, accept: str) -> tuple[int, dict[str, str], Path]:
        """The answer for url: (status, headers, file of the body), from the cache or fetched into it."""
        key = hashlib.sha256(f"{url}\n{accept}".encode()).hexdigest()
        body, meta = self.cache / key[:2] / key, self.cache / key[:2] / f"{key}.json"
        with self._key_lock(key):
            if meta.is_file() and body.is_file():
                saved = json.loads(meta.read_text())
                fresh = any(part in url for part in IMMUTABLE) or time.time() - saved["time"] < INDEX_SECONDS
                if fresh:
                    self.served.append(url)
                    return saved["status"], saved["headers"], body
            status, headers = self._fetch(url, accept, body)
            meta.write_text(json.dumps({"url": url, "status": status, "headers": headers, "time": time.time()}))
            self.fetched.append(url)
            return status, headers, body

    def _fetch(self, url: str, accept: str, body: Path) -> tuple[int, dict[str, str]]:
        body.parent.mkdir(parents=True, exist_ok=True)
        request = urllib.request.Request(url, headers={"Accept": accept or "*/*", "User-Agent": "dockwright-tests"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=self.upstream))
        temp = body.with_name(f".{body.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            with opener.open(request, timeout=300) as answer:
                status, headers = answer.status, answer.headers
                with temp.open("wb") as out:
                    while chunk := answer.read(1 << 20):
                        out.write(chunk)
        except urllib.error.HTTPError as exc:
            if exc.code not in (404, 410):
                raise
            status, headers = exc.code, exc.headers
            temp.write_bytes(b"")
        temp.replace(body)
        return status, {name: headers[name] for name in KEPT_HEADERS if headers.get(name)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    origin = ""  # "https://host" inside an opened tunnel; "" for a proxy request (absolute URL)

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def proxy(self) -> PackageProxy:
        owner: PackageProxy = self.server.owner  # type: ignore[attr-defined]
        return owner

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        url = self.origin + self.path if self.origin else self.path
        if not url.startswith(("http://", "https://")):
            self.send_error(400, "a proxy takes absolute URLs")
            return
        try:
            status, headers, path = self.proxy.get(url, self.headers.get("Accept", ""))
        except (OSError, urllib.error.URLError) as exc:
            self.send_error(502, f"upstream: {exc}")
            return
        size = path.stat().st_size
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if body:
            with path.open("rb") as data:
                while chunk := data.read(1 << 20):
                    self.wfile.write(chunk)

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        if host in INTERCEPTED and port == "443":
            try:
                inner = self.proxy.tls.wrap_socket(self.connection, server_side=True)
            except (ssl.SSLError, OSError):
                return
            handler = type("_Inside", (_Handler,), {"origin": f"https://{host}"})
            try:
                handler(inner, self.client_address, self.server)
            except (ssl.SSLError, OSError):
                pass
            finally:
                inner.close()
            return
        self.proxy.tunnelled.append(self.path)
        self._tunnel(host, int(port))

    def _tunnel(self, host: str, port: int) -> None:
        try:
            upstream = socket.create_connection((host, port), timeout=60)
        except OSError:
            return
        with upstream:
            ends = [self.connection, upstream]
            while True:
                readable, _, _ = select.select(ends, [], [], 120)
                if not readable:
                    return
                for end in readable:
                    data = end.recv(1 << 16)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
