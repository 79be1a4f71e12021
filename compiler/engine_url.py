"""What a Docker engine address may be: a builder's `url` (checked at compile time, where it is written) and
DOCKER_HOST (checked before a build). Pure: no engine is asked; the rules follow the docker SDK's, so an address
that passes here never makes the SDK fail on its form."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

SCHEMES = ("tcp", "http", "https", "unix", "ssh", "npipe")
EXAMPLES = "unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host"
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.%A-Za-z]+\]")
_PORT = re.compile(r"[0-9]{1,5}")


def shown(url: str) -> str:
    """url as it may be printed: a password in it masked."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)


def problem(url: str, *, bare: bool = False) -> str | None:
    """Why url cannot name a Docker engine, in words; None when it can. `bare` also takes host:port without a
    scheme, as DOCKER_HOST does."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        # The SDK reads `localhost:2375` as scheme `localhost`; only a host that cannot be a scheme is taken.
        if bare and url and not re.match(r"[A-Za-z][A-Za-z+]*:", url):
            scheme, rest = "tcp", url
        else:
            return "it has no scheme (tcp://, unix://, ssh://)"
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        return f"Docker engines listen on tcp://, unix://, ssh:// or npipe://, not {scheme}://"
    if any(ord(c) < 32 or ord(c) == 127 for c in rest):
        return "it holds a control character"
    if "?" in rest or "#" in rest or ";" in rest:
        return "an engine address has no query (?), fragment (#) or parameters (;)"
    try:
        urlsplit(f"{scheme}://{rest}")
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        return f"{str(exc)[0].lower()}{str(exc)[1:]}"
    netloc, _, path = rest.partition("/")
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else None
    if userinfo is not None and ":" in userinfo:
        keys = {"ssh": "your ssh client's keys", "tcp": "tls files", "http": "tls files", "https": "tls files"}
        return f"it holds a password, which {scheme}:// engines do not take" + (
            f" (they take {keys[scheme]})" if scheme in keys else "")
    if scheme in ("unix", "npipe"):
        return None  # a path; unix:// alone is the default socket
    if any(c.isspace() or c in "\\\"'" for c in rest):
        return "it holds a space, a quote or a backslash"
    if userinfo is not None and scheme != "ssh":
        return f"a {scheme}:// engine takes no user name, but tls files"
    if path and scheme == "ssh":
        return "an ssh:// address has no path"
    if not urlsplit(f"{scheme}://{netloc}").hostname:
        return "it names no host"
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        bracket = hostport.find("]")
        host_part, port_part = hostport[:bracket + 1], hostport[bracket + 1:]
    else:
        host_part, colon, port = hostport.partition(":")
        port_part = colon + port
    if not _HOST.fullmatch(host_part):
        return f"'{host_part}' is not a host name or address"
    if not port_part and scheme != "ssh":  # ssh defaults to 22; the SDK requires the others
        return "it names no port (engines listen on 2375, or 2376 with TLS)"
    if port_part:
        port = port_part[1:]
        if not port:
            return "a ':' with no port after it"
        if not _PORT.fullmatch(port):
            return f"port '{port}' is not a number"
        if not 1 <= int(port) <= 65535:
            return f"port {int(port)} is out of range (1-65535)"
    return None
