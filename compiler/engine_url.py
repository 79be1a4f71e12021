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
    netloc, _, path = rest.partition("/")
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else None
    why = _form_problem(scheme, rest) or _password_problem(scheme, userinfo)
    if why is not None or scheme in ("unix", "npipe"):
        return why  # unix:// and npipe:// take a path; unix:// alone is the default socket
    return _network_problem(scheme, rest, netloc, path, userinfo)


def _form_problem(scheme: str, rest: str) -> str | None:
    """What no engine address may hold, whatever its scheme."""
    if any(ord(c) < 32 or ord(c) == 127 for c in rest):
        return "it holds a control character"
    if "?" in rest or "#" in rest or ";" in rest:
        return "an engine address has no query (?), fragment (#) or parameters (;)"
    try:
        urlsplit(f"{scheme}://{rest}")
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        return f"{str(exc)[0].lower()}{str(exc)[1:]}"
    return None


def _password_problem(scheme: str, userinfo: str | None) -> str | None:
    if userinfo is None or ":" not in userinfo:
        return None
    keys = {"ssh": "your ssh client's keys", "tcp": "tls files", "http": "tls files", "https": "tls files"}
    return f"it holds a password, which {scheme}:// engines do not take" + (
        f" (they take {keys[scheme]})" if scheme in keys else "")


def _network_problem(scheme: str, rest: str, netloc: str, path: str, userinfo: str | None) -> str | None:
    """What is wrong with the host and port of a tcp://, http(s):// or ssh:// address."""
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
    return _port_problem(port_part[1:]) if port_part else None


def _port_problem(port: str) -> str | None:
    if not port:
        return "a ':' with no port after it"
    if not _PORT.fullmatch(port):
        return f"port '{port}' is not a number"
    if not 1 <= int(port) <= 65535:
        return f"port {int(port)} is out of range (1-65535)"
    return None
