"""The caching proxy the example matrix installs through (package_proxy.py), against an index on 127.0.0.1: a
package file is fetched once and then answered from the cache (across proxies: the cache is on disk), an index
page again after a day, a 404 is kept as a 404, HEAD has no body, and the proxy's CA signs what it serves for
PyPI's hosts."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra import ca_bundle
from lock.servers import Dist, Index
from package_proxy import INDEX_SECONDS, INTERCEPTED, PackageProxy, certificates


def _get(proxy: PackageProxy, url: str, method: str = "GET") -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_file_is_fetched_once_and_an_index_page_again_after_a_day(tmp_path: Path) -> None:
    index = Index()
    proxy = PackageProxy(tmp_path / "cache", ca_bundle())
    try:
        index.add(Dist("six", "1.0"))
        wheel = f"http://127.0.0.1:{index.port}/files/six-1.0-py3-none-any.whl"
        page = f"http://127.0.0.1:{index.port}/simple/six/"
        assert _get(proxy, wheel) == (200, index.files["six-1.0-py3-none-any.whl"])
        status, body = _get(proxy, page)
        assert status == 200 and json.loads(body)["name"] == "six"
        assert _get(proxy, f"http://127.0.0.1:{index.port}/simple/nothing/") == (404, b"")
        asked = list(index.requests)
        assert asked == ["/files/six-1.0-py3-none-any.whl", "/simple/six/", "/simple/nothing/"]

        again = PackageProxy(tmp_path / "cache", ca_bundle())  # a later run: only the cache
        try:
            assert _get(again, wheel) == (200, index.files["six-1.0-py3-none-any.whl"])
            assert _get(again, wheel, "HEAD") == (200, b"")
            assert _get(again, f"http://127.0.0.1:{index.port}/simple/nothing/") == (404, b"")
            assert index.requests == asked
            assert again.fetched == [] and len(again.served) == 3

            for meta in (tmp_path / "cache").glob("*/*.json"):  # a day later
                saved = json.loads(meta.read_text())
                saved["time"] = time.time() - INDEX_SECONDS - 1
                meta.write_text(json.dumps(saved))
            assert _get(again, wheel)[0] == 200 and _get(again, page)[0] == 200
            assert index.requests == [*asked, "/simple/six/"]  # the page again, the wheel never
        finally:
            again.close()
    finally:
        proxy.close()
        index.close()


def _handshake(proxy: PackageProxy, host: str, context: ssl.SSLContext) -> str:
    """CONNECT host:443 through the proxy, then TLS as a client of host; the certificate's subject."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as raw:
        raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        answer = b""
        while not answer.endswith(b"\r\n\r\n"):
            answer += raw.recv(1)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        with context.wrap_socket(raw, server_hostname=host) as tls:
            subject = dict(pair[0] for pair in tls.getpeercert()["subject"])
            return str(subject["commonName"])


def test_pypi_hosts_are_answered_with_a_certificate_of_the_test_ca(tmp_path: Path) -> None:
    proxy = PackageProxy(tmp_path / "cache", ca_bundle())
    try:
        trusting = ssl.create_default_context(cafile=str(proxy.ca))
        for host in INTERCEPTED:
            assert _handshake(proxy, host, trusting) == INTERCEPTED[0]
        with pytest.raises(ssl.SSLCertVerificationError):  # only a client that trusts the test CA accepts it
            _handshake(proxy, INTERCEPTED[1], ssl.create_default_context())
        assert proxy.fetched == [] and proxy.tunnelled == []
    finally:
        proxy.close()
    ca, cert, key = certificates(tmp_path / "cache" / "tls")
    assert ca == proxy.ca and certificates(tmp_path / "cache" / "tls") == (ca, cert, key)  # made once, then kept
