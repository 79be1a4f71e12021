"""Real Docker infrastructure for the builder tests, made on this machine from Debian packages.

The builder tests build images for real, but no image can be pulled from any registry here and CI
runs on a clean Debian bookworm machine as root. So this module installs and starts everything
itself, idempotently, and leaves it running so the next run reuses it in about a second:

* the local engine: Debian's ``dockerd`` on ``unix:///var/run/docker.sock`` (started only if that
  socket does not answer);
* a remote engine: a second ``dockerd`` on ``tcp://127.0.0.1:23760`` with mutual TLS (its own CA,
  server and client certificates made with the openssl CLI), its own data root, exec root,
  pidfile and containerd namespaces, so it never shares state with the local engine;
* a registry: Debian's ``docker-registry`` on ``127.0.0.1:25000`` (plain HTTP; the engine allows
  insecure registries on 127.0.0.0/8 by default);
* base images made locally and imported with the SDK: ``dockwright-test/busybox:1`` (a rootfs
  around busybox-static, seconds to make) and ``dockwright-test/bookworm-py:1`` (debootstrap
  minbase + python3 + python3-venv, about a minute, cached as a tar between runs).

Everything lives in STATE_DIR (``/var/lib/dockwright-test``, env ``DOCKWRIGHT_TEST_STATE``) and
CACHE_DIR (``~/.cache/dockwright-test``, env ``DOCKWRIGHT_TEST_CACHE``). Anything that cannot be
set up raises InfraError with the reason (and the daemon's last log lines): these tests must fail
loudly, never be skipped.

Run by hand: ``python tests/builders/infra.py up | down [--keep-local] | status``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import docker
import docker.errors
import docker.tls
import requests

STATE_DIR = Path(os.environ.get("DOCKWRIGHT_TEST_STATE", "/var/lib/dockwright-test"))
CACHE_DIR = Path(os.environ.get("DOCKWRIGHT_TEST_CACHE", Path.home() / ".cache" / "dockwright-test"))
# exec-root holds sockets and netns handles; unix socket paths must stay short (108 bytes).
REMOTE_EXEC_ROOT = Path("/run/dockwright-test/remote")

LOCAL_URL = "unix:///var/run/docker.sock"
LOCAL_PIDFILE = Path("/var/run/docker.pid")  # dockerd's default; it refuses to start if that pid lives
REMOTE_PORT = 23760
REMOTE_URL = f"tcp://127.0.0.1:{REMOTE_PORT}"
REMOTE_API_VERSION = "1.41"  # Debian bookworm's dockerd 20.10
REMOTE_BRIDGE = "dwtest-remote0"  # at most 15 characters (a Linux interface name)
REGISTRY_PORT = 25000
REGISTRY = f"127.0.0.1:{REGISTRY_PORT}"

# Bump the tag (and so the cache file name) whenever a recipe below changes.
BUSYBOX_IMAGE = "dockwright-test/busybox:1"
PYTHON_IMAGE = "dockwright-test/bookworm-py:1"
BOOKWORM_TAR = "bookworm-py-1.tar"

# iproute2 makes the remote engine's bridge; a slim Debian may lack it (docker.io brings iptables).
PACKAGES = ("docker.io", "docker-registry", "debootstrap", "busybox-static", "openssl", "iproute2")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BOOKWORM_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main\n"
    "deb http://deb.debian.org/debian bookworm-updates main\n"
    "deb http://deb.debian.org/debian-security bookworm-security main\n"
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Builds that pip-install real packages take minutes; the SDK's default of 60 s is too short.
CLIENT_TIMEOUT = 900


class InfraError(RuntimeError):
    """Something the builder tests need could not be set up; the message says what and why."""


@dataclass(frozen=True)
class Infra:
    """What the builder tests get: where the engines and the registry are, and the base images."""

    local_url: str
    remote_url: str
    remote_tls_dir: Path  # ca.pem, cert.pem, key.pem: a DOCKER_CERT_PATH for the remote engine
    registry: str  # host:port, plain HTTP
    busybox: str
    python: str
    ca_bundle: Path  # what pip inside a container must trust to reach PyPI from this machine

    def local_client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.local_url, timeout=CLIENT_TIMEOUT)

    def remote_tls(self) -> docker.tls.TLSConfig:
        return remote_tls_config(self.remote_tls_dir)

    def remote_client(self) -> docker.DockerClient:
        return _remote_client(self.remote_tls_dir, timeout=CLIENT_TIMEOUT)

    def remote_env(self) -> dict[str, str]:
        """The variables `docker.from_env()` (and the docker CLI) read to reach the remote engine.
        Beware: with REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE set (as on this machine), a client
        from `docker.from_env()` fails with CERTIFICATE_VERIFY_FAILED; see _remote_client."""
        return {"DOCKER_HOST": self.remote_url, "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(self.remote_tls_dir)}


# --------------------------------------------------------------------------------------------
# small helpers


def _log(message: str) -> None:
    # stderr, so pytest shows it with the failure (or live with -s) and `infra.py up` shows progress.
    print(f"[dockwright-test infra] {message}", file=sys.stderr, flush=True)


def _run(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a command; on failure raise InfraError with its output."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                              env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise InfraError(f"{argv[0]} is not installed: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{' '.join(argv)} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise InfraError(f"{' '.join(argv)} exited {done.returncode}:\n{_tail(done.stdout + done.stderr)}")
    return done.stdout


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError:
        return f"(no log at {path})"


def _pid_alive(pidfile: Path, program: str) -> int | None:
    """The pid in pidfile if that process runs `program` (a recycled pid running something else
    must never be signalled), else None."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    # A zombie (dead, not yet reaped by its parent) has an empty cmdline.
    return pid if cmdline and os.path.basename(cmdline[0].decode(errors="replace")) == program else None


def _stop(pidfile: Path, program: str, what: str) -> bool:
    """SIGTERM the daemon in pidfile, SIGKILL after STOP_TIMEOUT; True if one was running."""
    pid = _pid_alive(pidfile, program)
    if pid is None:
        return False
    _log(f"stopping {what} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _pid_alive(pidfile, program) == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid_alive(pidfile, program) == pid:
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    return True


# Popen objects of daemons started by this process. Keeping them referenced means Python does not
# warn "subprocess is still running" (a ResourceWarning pytest may report) while tests run.
_DAEMONS: list[subprocess.Popen[bytes]] = []


def _spawn(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a daemon that outlives this process: its own session (no SIGHUP or Ctrl-C from our
    terminal or pytest), no inherited descriptors, output appended to log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=STATE_DIR, start_new_session=True, close_fds=True)
        except FileNotFoundError as exc:
            raise InfraError(f"{argv[0]} is not installed: {exc}") from exc
    _DAEMONS.append(proc)
    return proc


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes] | None, what: str, log: Path,
                timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            raise InfraError(f"{what} exited with status {proc.returncode} while starting; "
                             f"last lines of {log}:\n{_log_tail(log)}")
        if time.monotonic() > deadline:
            raise InfraError(f"{what} did not answer within {timeout:.0f} s; last lines of {log}:\n{_log_tail(log)}")
        time.sleep(0.25)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One bring-up at a time across processes (two pytest runs must not start two daemons)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "infra.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# packages


def missing_packages() -> list[str]:
    missing = []
    for package in PACKAGES:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not done.stdout.endswith(" installed"):
            missing.append(package)
    return missing


def ensure_packages() -> None:
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0:
        raise InfraError(f"the builder tests need Debian packages {missing} and root to install them")
    _log(f"installing {' '.join(missing)} with apt-get")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], env=env)
    _run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES], env=env, timeout=1200)
    still = missing_packages()
    if still:
        raise InfraError(f"apt-get install finished but {still} are still not installed")


# --------------------------------------------------------------------------------------------
# engines


ClientFactory = Callable[[], docker.DockerClient]
_NOT_UP = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def _pings(make_client: ClientFactory) -> bool:
    try:
        client = make_client()
    except _NOT_UP:  # the SDK asks the engine for its API version on construction
        return False
    try:
        return bool(client.ping())
    except _NOT_UP:
        return False
    finally:
        client.close()


def _local_client(timeout: int) -> docker.DockerClient:
    return docker.DockerClient(base_url=LOCAL_URL, timeout=timeout)


def ensure_local_engine() -> docker.DockerClient:
    """The engine on /var/run/docker.sock; start Debian's dockerd if nothing answers there."""
    probe = partial(_pings, partial(_local_client, 5))
    if not probe():
        log = STATE_DIR / "local-dockerd.log"
        proc: subprocess.Popen[bytes] | None = None
        if _pid_alive(LOCAL_PIDFILE, "dockerd") is not None:
            # A dockerd is running but not answering yet (still starting): wait for it rather
            # than start a second one, which would refuse because of the pidfile anyway.
            _log("a local dockerd is running but not answering yet; waiting for it")
        else:
            _log(f"starting the local engine (/usr/sbin/dockerd, log {log})")
            proc = _spawn(["/usr/sbin/dockerd"], log)
            (STATE_DIR / "local-dockerd.started").write_text(f"{proc.pid}\n")
        _wait_until(probe, proc, "the local dockerd", log)
    client = _local_client(CLIENT_TIMEOUT)
    _ensure_docker0(client)
    return client


def _ensure_docker0(client: docker.DockerClient) -> None:
    """Put back the local engine's docker0 if it vanished under the running engine (any dockerd
    started with --bridge=none deletes it, as an earlier version of this module did). Without it
    every build fails with "could not find bridge docker0: route ip+net: no such network interface";
    dockerd itself makes it again only when it restarts, and restarting may break someone's build."""
    if Path("/sys/class/net/docker0").exists():
        return
    network = client.networks.get("bridge").attrs
    if network["Options"].get("com.docker.network.bridge.name") != "docker0":
        return
    config = network["IPAM"]["Config"][0]
    prefix = config["Subnet"].split("/")[1]
    _log(f"docker0 is missing under the running local engine: making it again ({config['Gateway']}/{prefix})")
    _run(["ip", "link", "add", "name", "docker0", "type", "bridge"])
    _run(["ip", "addr", "add", f"{config['Gateway']}/{prefix}", "dev", "docker0"])
    _run(["ip", "link", "set", "docker0", "up"])


def _openssl(*args: str) -> None:
    _run(["openssl", *args])


def ensure_tls_certs() -> Path:
    """CA, server and client certificates for the remote engine; returns the client directory
    (ca.pem, cert.pem, key.pem). Made once; a partial set is made again from scratch."""
    tls = STATE_DIR / "tls"
    client, server = tls / "client", tls / "server"
    wanted = [client / "ca.pem", client / "cert.pem", client / "key.pem",
              server / "ca.pem", server / "cert.pem", server / "key.pem"]
    if all(path.is_file() for path in wanted):
        return client
    _log(f"making TLS certificates in {tls}")
    tls.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tls-", dir=tls))
    try:
        days = "3650"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", days,
                 "-subj", "/CN=dockwright-test CA", "-keyout", str(work / "ca-key.pem"), "-out", str(work / "ca.pem"))
        # Serial numbers must differ per certificate; random ones avoid a serial file.
        for name, subject, extensions in (
            ("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
            ("client", "/CN=dockwright-test client", "extendedKeyUsage=clientAuth\n"),
        ):
            (work / f"{name}.ext").write_text(extensions)
            _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                     "-keyout", str(work / f"{name}-key.pem"), "-out", str(work / f"{name}.csr"))
            _openssl("x509", "-req", "-sha256", "-days", days, "-in", str(work / f"{name}.csr"),
                     "-CA", str(work / "ca.pem"), "-CAkey", str(work / "ca-key.pem"),
                     "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                     "-extfile", str(work / f"{name}.ext"), "-out", str(work / f"{name}-cert.pem"))
        for name, target in (("server", server), ("client", client)):
            if target.exists():
                shutil.rmtree(target)
            target.mkdir()
            shutil.copy(work / "ca.pem", target / "ca.pem")
            shutil.copy(work / f"{name}-cert.pem", target / "cert.pem")
            shutil.copy(work / f"{name}-key.pem", target / "key.pem")
            (target / "key.pem").chmod(0o600)
        shutil.copy(work / "ca-key.pem", tls / "ca-key.pem")
        (tls / "ca-key.pem").chmod(0o600)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # A remote engine still running with the old certificates would reject the new client.
    _stop(STATE_DIR / "remote" / "dockerd.pid", "dockerd", "the remote engine (new certificates)")
    return client


def remote_tls_config(client_dir: Path) -> docker.tls.TLSConfig:
    return docker.tls.TLSConfig(client_cert=(str(client_dir / "cert.pem"), str(client_dir / "key.pem")),
                                ca_cert=str(client_dir / "ca.pem"), verify=True)


def _remote_client(client_dir: Path, timeout: int) -> docker.DockerClient:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (both set on this machine) replace the
    # session's verify path on every request, so the SDK would check the engine's certificate
    # against the system CAs and fail with CERTIFICATE_VERIFY_FAILED; trust_env=False stops that
    # (and keeps HTTPS_PROXY away from loopback). It must be off before the first request, but
    # version="auto" asks the engine in the constructor, so the API version is pinned: the remote
    # engine is always Debian's dockerd 20.10, API 1.41.
    client = docker.DockerClient(base_url=REMOTE_URL, tls=remote_tls_config(client_dir), timeout=timeout,
                                 version=REMOTE_API_VERSION)
    client.api.trust_env = False
    return client


def ensure_remote_engine() -> docker.DockerClient:
    """A second dockerd on tcp://127.0.0.1:REMOTE_PORT with --tlsverify and nothing shared with
    the local engine: data root, exec root, pidfile, config file, cgroup parent and containerd
    namespaces are its own (with no system containerd, each dockerd also runs its own)."""
    client_dir = ensure_tls_certs()
    probe = partial(_pings, partial(_remote_client, client_dir, 5))
    if probe():
        return _remote_client(client_dir, timeout=CLIENT_TIMEOUT)
    home = STATE_DIR / "remote"
    pidfile, log = home / "dockerd.pid", home / "dockerd.log"
    # Running but not answering over TLS (wedged, or started with other certificates): restart.
    _stop(pidfile, "dockerd", "the remote engine (not answering)")
    home.mkdir(parents=True, exist_ok=True)
    REMOTE_EXEC_ROOT.mkdir(parents=True, exist_ok=True)
    config = home / "daemon.json"
    # A config of its own: /etc/docker/daemon.json (say, with "hosts") is the local engine's. The
    # engine ID comes from the trust key, /etc/docker/key.json unless this (hidden) key says
    # otherwise: without it both engines would report the same ID.
    config.write_text(json.dumps({"deprecated-key-path": str(home / "key.json")}) + "\n")
    server = STATE_DIR / "tls" / "server"
    argv = [
        "/usr/sbin/dockerd",
        "--config-file", str(config),
        "--host", f"tcp://127.0.0.1:{REMOTE_PORT}",
        "--tlsverify", "--tlscacert", str(server / "ca.pem"),
        "--tlscert", str(server / "cert.pem"), "--tlskey", str(server / "key.pem"),
        "--data-root", str(home / "data"),
        "--exec-root", str(REMOTE_EXEC_ROOT),
        "--pidfile", str(pidfile),
        "--containerd-namespace", "dockwright-remote",
        "--containerd-plugins-namespace", "dockwright-remote-plugins",
        "--cgroup-parent", "/dockwright-remote",
        # Not --bridge=none: that makes dockerd delete the host's docker0, which is the local
        # engine's (both share this network namespace). A bridge of its own, and no iptables: the
        # local engine owns the DOCKER chains and every dockerd flushes them when it starts.
        "--bridge", REMOTE_BRIDGE, "--iptables=false", "--ip-masq=false",
    ]
    _ensure_bridge()
    _log(f"starting the remote engine on {REMOTE_URL} (log {log})")
    proc = _spawn(argv, log)
    _wait_until(probe, proc, "the remote dockerd", log)
    client = _remote_client(client_dir, timeout=CLIENT_TIMEOUT)
    _route_remote_bridge(client)
    return client


def _ensure_bridge() -> None:
    """dockerd refuses to create a bridge with a non-default name ("must be created manually");
    it gives the bridge a free subnet itself."""
    if not Path(f"/sys/class/net/{REMOTE_BRIDGE}").exists():
        _run(["ip", "link", "add", "name", REMOTE_BRIDGE, "type", "bridge"])


# Rules this module adds carry this comment, so they can be found and removed again.
_RULE_COMMENT = "dockwright-test-remote"


def _drop_our_rules() -> None:
    for table, chain in (("filter", "FORWARD"), ("nat", "POSTROUTING")):
        for rule in _run(["iptables", "-w", "-t", table, "-S", chain]).splitlines():
            if _RULE_COMMENT in rule and rule.startswith("-A "):
                # iptables -S quotes nothing here: the comment has no spaces.
                _run(["iptables", "-w", "-t", table, "-D", *rule.split()[1:]])


def _route_remote_bridge(client: docker.DockerClient) -> None:
    """Outbound network for containers on the remote engine's bridge, which --iptables=false
    leaves without: masquerade its subnet and accept its traffic in FORWARD (policy DROP once the
    local engine has run). Built-in chains, which no dockerd flushes; replaced on every start, as
    the subnet may change."""
    subnet = client.networks.get("bridge").attrs["IPAM"]["Config"][0]["Subnet"]
    tag = ["-m", "comment", "--comment", _RULE_COMMENT]
    _drop_our_rules()
    _run(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", subnet, "!", "-o", REMOTE_BRIDGE,
          *tag, "-j", "MASQUERADE"])
    _run(["iptables", "-w", "-A", "FORWARD", "-i", REMOTE_BRIDGE, *tag, "-j", "ACCEPT"])
    _run(["iptables", "-w", "-A", "FORWARD", "-o", REMOTE_BRIDGE, "-m", "conntrack",
          "--ctstate", "RELATED,ESTABLISHED", *tag, "-j", "ACCEPT"])


# --------------------------------------------------------------------------------------------
# registry


def _registry_answers() -> bool:
    # No proxy: the registry is on loopback, whatever HTTP_PROXY says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{REGISTRY}/v2/", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def ensure_registry() -> str:
    """Debian's docker-registry on 127.0.0.1:REGISTRY_PORT, storage in the state dir."""
    if _registry_answers():
        return REGISTRY
    home = STATE_DIR / "registry"
    pidfile, log, config = home / "registry.pid", home / "registry.log", home / "config.yml"
    _stop(pidfile, "docker-registry", "the registry (not answering)")
    home.mkdir(parents=True, exist_ok=True)
    # JSON is YAML; no auth (Debian's default config wants an htpasswd file) and loopback only.
    config.write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(home / "data")}, "delete": {"enabled": True}},
        "http": {"addr": REGISTRY},
    }, indent=2) + "\n")
    _log(f"starting the registry on {REGISTRY} (log {log})")
    proc = _spawn(["/usr/bin/docker-registry", "serve", str(config)], log)
    pidfile.write_text(f"{proc.pid}\n")
    _wait_until(_registry_answers, proc, "the registry", log)
    return REGISTRY


# --------------------------------------------------------------------------------------------
# base images


def _has_image(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _import(client: docker.DockerClient, src: str | bytes, name: str, changes: Sequence[str]) -> None:
    repository, tag = name.rsplit(":", 1)
    answer = client.api.import_image(src=src, repository=repository, tag=tag, changes=list(changes))
    # The answer is a JSON stream; failures come back as {"error": ...} with status 200.
    for line in str(answer).splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("error"):
                raise InfraError(f"importing {name}: {message['error']}")
    if not _has_image(client, name):
        raise InfraError(f"importing {name} reported no error but the engine has no such image: {answer!r}")


def _busybox_rootfs() -> bytes:
    """An image rootfs as a tar: /bin/busybox, a symlink per applet where `busybox --list-full`
    puts it, root in /etc/passwd and /etc/group, and /tmp."""
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        raise InfraError("/bin/busybox is missing (Debian package busybox-static)")
    applets = _run([str(busybox), "--list-full"]).split()
    out = io.BytesIO()
    mtime = int(busybox.stat().st_mtime)

    def add(name: str, *, kind: bytes = tarfile.DIRTYPE, mode: int = 0o755, data: bytes = b"",
            link: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.linkname, info.size = kind, mode, mtime, link, len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)

    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "dev", "proc", "sys"}
        dirs |= {str(Path(applet).parent) for applet in applets}
        for directory in sorted(dirs):
            add(directory, mode=0o700 if directory == "root" else 0o755)
        add("tmp", mode=0o1777)
        add("bin/busybox", kind=tarfile.REGTYPE, data=busybox.read_bytes())
        for applet in sorted(applets):
            if applet != "bin/busybox":
                add(applet, kind=tarfile.SYMTYPE, mode=0o777, link="/bin/busybox")
        add("etc/passwd", kind=tarfile.REGTYPE, mode=0o644,
            data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", kind=tarfile.REGTYPE, mode=0o644, data=b"root:x:0:\nnogroup:x:65534:\n")
    return out.getvalue()


def ensure_busybox_image(client: docker.DockerClient) -> str:
    if not _has_image(client, BUSYBOX_IMAGE):
        _log(f"importing {BUSYBOX_IMAGE} into {client.api.base_url}")
        _import(client, _busybox_rootfs(), BUSYBOX_IMAGE, [f"ENV PATH={DEFAULT_PATH}", 'CMD ["sh"]'])
    return BUSYBOX_IMAGE


def bookworm_tar() -> Path:
    """debootstrap minbase bookworm with python3 and python3-venv, as a tar in CACHE_DIR; made once
    (about a minute) and kept between runs."""
    target = CACHE_DIR / BOOKWORM_TAR
    if target.is_file():
        return target
    if os.geteuid() != 0:
        raise InfraError(f"making {target} needs root (debootstrap)")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so the final rename is atomic and a crash leaves no half tar.
    work = Path(tempfile.mkdtemp(prefix="bookworm-", dir=CACHE_DIR))
    try:
        root = work / "rootfs"
        _log(f"debootstrap bookworm into {root} (about a minute; cached as {target})")
        _run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
              "bookworm", str(root), DEBIAN_MIRROR], timeout=1200)
        # apt inside containers built from this image must find bookworm, its updates and security.
        (root / "etc/apt/sources.list").write_text(BOOKWORM_SOURCES)
        # Downloaded .debs and package lists are only weight: images run apt-get update first.
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / folder).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = work / "rootfs.tar"
        # The engine mounts /dev, /proc and /sys itself; debootstrap's device nodes are not wanted.
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial),
              "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."], timeout=600)
        partial.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def ensure_python_image(client: docker.DockerClient) -> str:
    if not _has_image(client, PYTHON_IMAGE):
        tar = bookworm_tar()
        _log(f"importing {PYTHON_IMAGE} into {client.api.base_url}")
        _import(client, str(tar), PYTHON_IMAGE,
                [f"ENV PATH={DEFAULT_PATH}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'])
    return PYTHON_IMAGE


def tag_as(client: docker.DockerClient, image: str, *names: str) -> None:
    """Make local tags (e.g. python:3.11-slim) point at image, so a Dockerfile FROM them builds
    here without pulling. A tag already pointing at the same image is left alone."""
    wanted = client.images.get(image)
    for name in names:
        # A colon in the last path part starts the tag; one before it is a registry's port.
        repository, tag = name.rsplit(":", 1) if ":" in name.rsplit("/", 1)[-1] else (name, "latest")
        with contextlib.suppress(docker.errors.ImageNotFound):
            if client.images.get(name).id == wanted.id:
                continue
        if not wanted.tag(repository, tag):
            raise InfraError(f"could not tag {image} as {name}")


# --------------------------------------------------------------------------------------------
# all of it


def ca_bundle() -> Path:
    """The CA bundle pip must trust to reach PyPI from this machine (PIP_CERT, else Debian's)."""
    path = Path(os.environ.get("PIP_CERT") or DEFAULT_CA_BUNDLE)
    if not path.is_file():
        raise InfraError(f"CA bundle {path} (from PIP_CERT, else {DEFAULT_CA_BUNDLE}) does not exist; "
                         "pip inside test images could not reach PyPI")
    return path


# --------------------------------------------------------------------------------------------
# daemonless engines: buildah and podman (one rootful store, /var/lib/containers/storage, shared by both)

CONTAINER_PACKAGES = ("buildah", "podman", "skopeo", "uidmap", "fuse-overlayfs")
PODMAN_SOCKET = Path("/run/dockwright-test/podman.sock")
PODMAN_URL = f"unix://{PODMAN_SOCKET}"


def _missing(packages: Sequence[str]) -> list[str]:
    missing = []
    for package in packages:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not done.stdout.endswith(" installed"):
            missing.append(package)
    return missing


def ensure_container_packages() -> None:
    missing = _missing(CONTAINER_PACKAGES)
    if not missing:
        return
    _log(f"installing {' '.join(missing)} with apt-get")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], env=env)
    _run(["apt-get", "install", "-y", "--no-install-recommends", *CONTAINER_PACKAGES], env=env, timeout=1200)
    still = _missing(CONTAINER_PACKAGES)
    if still:
        raise InfraError(f"apt-get install finished but {still} are still not installed")


def _podman_client(timeout: int) -> docker.DockerClient:
    return docker.DockerClient(base_url=PODMAN_URL, timeout=timeout)


def ensure_podman_service() -> str:
    """`podman system service` on a socket of its own (not podman's default, which a machine may use)."""
    if _pings(partial(_podman_client, 5)):
        return PODMAN_URL
    log = STATE_DIR / "podman" / "service.log"
    PODMAN_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        PODMAN_SOCKET.unlink()  # a socket left by a service that died
    _log(f"starting podman system service on {PODMAN_URL}")
    proc = _spawn(["podman", "system", "service", "--time=0", PODMAN_URL], log)
    (STATE_DIR / "podman" / "service.pid").write_text(f"{proc.pid}\n")
    _wait_until(partial(_pings, partial(_podman_client, 5)), proc, "podman system service", log)
    return PODMAN_URL


def ensure_store_images(*names: str) -> None:
    """The base images in buildah's (and so podman's) store, copied from the local engine's."""
    for name in names:
        if subprocess.run(["buildah", "inspect", "--type", "image", name], capture_output=True,
                          check=False).returncode == 0:
            continue
        _log(f"copying {name} from the local engine into buildah's store")
        _run(["buildah", "pull", "--quiet", f"docker-daemon:{name}"])


def up_containers() -> str:
    """buildah and podman installed, podman's API socket answering, the base images in their store; the
    podman url. Needs up() first (the base images come from the local engine)."""
    with _locked():
        ensure_container_packages()
        url = ensure_podman_service()
        ensure_store_images(BUSYBOX_IMAGE, PYTHON_IMAGE)
    return url


def up(*, remote: bool = True) -> Infra:
    """Install, start and import whatever is missing; reuse whatever runs. Idempotent."""
    if os.geteuid() != 0:
        raise InfraError("the builder test infrastructure needs root (apt-get, dockerd, debootstrap)")
    with _locked():
        ensure_packages()
        bundle = ca_bundle()
        clients = [ensure_local_engine()]
        if remote:
            clients.append(ensure_remote_engine())
        registry = ensure_registry()
        for client in clients:
            try:
                ensure_busybox_image(client)
                ensure_python_image(client)
            finally:
                client.close()
    return Infra(local_url=LOCAL_URL, remote_url=REMOTE_URL, remote_tls_dir=STATE_DIR / "tls" / "client",
                 registry=registry, busybox=BUSYBOX_IMAGE, python=PYTHON_IMAGE, ca_bundle=bundle)


def down(*, keep_local: bool = False) -> None:
    """Stop what up() started: the remote engine, the registry, and the local engine if up()
    started it (unless keep_local). Images, certificates and the debootstrap cache stay."""
    with _locked():
        _stop(STATE_DIR / "remote" / "dockerd.pid", "dockerd", "the remote engine")
        with contextlib.suppress(InfraError):  # iptables or ip missing: nothing of ours to remove
            _drop_our_rules()
            if Path(f"/sys/class/net/{REMOTE_BRIDGE}").exists():
                _run(["ip", "link", "delete", REMOTE_BRIDGE])
        _stop(STATE_DIR / "registry" / "registry.pid", "docker-registry", "the registry")
        marker = STATE_DIR / "local-dockerd.started"
        if keep_local:
            return
        with contextlib.suppress(OSError, ValueError):
            if _pid_alive(LOCAL_PIDFILE, "dockerd") == int(marker.read_text()):
                _stop(LOCAL_PIDFILE, "dockerd", "the local engine")
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()


def status() -> bool:
    """Print what runs and what is cached; True if everything is up."""
    ok = True

    def line(name: str, good: bool, detail: str) -> None:
        nonlocal ok
        ok &= good
        print(f"{'ok  ' if good else 'DOWN'} {name:<16} {detail}")

    missing = missing_packages()
    line("packages", not missing, f"missing: {' '.join(missing)}" if missing else " ".join(PACKAGES))
    engines: list[tuple[str, ClientFactory, str]] = [
        ("local engine", partial(_local_client, 5), LOCAL_URL),
        ("remote engine", partial(_remote_client, STATE_DIR / "tls" / "client", 5), f"{REMOTE_URL} (TLS)"),
    ]
    for name, factory, url in engines:
        if not _pings(factory):
            line(name, False, f"{url} does not answer")
            continue
        client = factory()
        try:
            info = client.info()
            images = [image for image in (BUSYBOX_IMAGE, PYTHON_IMAGE) if _has_image(client, image)]
            line(name, len(images) == 2, f"{url} id {info['ID']} dockerd {info['ServerVersion']} "
                 f"driver {info['Driver']}; images: {', '.join(images) or 'none'}")
        finally:
            client.close()
    line("registry", _registry_answers(), f"http://{REGISTRY}/v2/")
    tar = CACHE_DIR / BOOKWORM_TAR
    line("bookworm cache", tar.is_file(), f"{tar} ({tar.stat().st_size // 2**20} MiB)" if tar.is_file() else str(tar))
    return ok


def main(argv: Sequence[str]) -> int:
    commands = {"up": [], "down": [[], ["--keep-local"]], "status": []}
    if not argv or argv[0] not in commands or (argv[1:] and list(argv[1:]) not in commands[argv[0]]):
        print(f"usage: {Path(__file__).name} up | down [--keep-local] | status", file=sys.stderr)
        return 2
    try:
        if argv[0] == "up":
            started = time.monotonic()
            infra = up()
            for key, value in vars(infra).items():
                print(f"{key:<15} {value}")
            print(f"up in {time.monotonic() - started:.1f} s")
            return 0
        if argv[0] == "down":
            down(keep_local="--keep-local" in argv)
            return 0
        return 0 if status() else 1
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


@dataclass(frozen=True)
class DoomedEngine:
    """A dockerd of one test's own, to kill: its own socket, data root, exec root, pid file, containerd namespaces
    and bridge, so killing it touches no engine anyone else uses (`name` at most 10 characters: the bridge's
    name is at most 15)."""

    name: str

    @property
    def home(self) -> Path:
        return STATE_DIR / self.name

    @property
    def exec_root(self) -> Path:
        return Path(f"/run/dockwright-test/{self.name}")

    @property
    def url(self) -> str:
        return f"unix:///run/dockwright-test/{self.name}.sock"

    @property
    def bridge(self) -> str:
        return f"dwtest-{self.name[:7]}0"

    def client(self, timeout: int = 30) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=timeout)

    def start(self) -> subprocess.Popen[bytes]:
        self.home.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        config = self.home / "daemon.json"
        config.write_text(json.dumps({"deprecated-key-path": str(self.home / "key.json")}) + "\n")
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"], check=True)
        log = self.home / "dockerd.log"
        proc = _spawn([
            "/usr/sbin/dockerd", "--config-file", str(config), "--host", self.url,
            "--data-root", str(self.home / "data"), "--exec-root", str(self.exec_root),
            "--pidfile", str(self.home / "dockerd.pid"),
            "--containerd-namespace", f"dockwright-{self.name}", "--containerd-plugins-namespace",
            f"dockwright-{self.name}-plugins", "--cgroup-parent", f"/dockwright-{self.name}", "--bridge", self.bridge,
            "--iptables=false", "--ip-masq=false",
        ], log)
        _wait_until(lambda: _pings(lambda: self.client(5)), proc, f"the {self.name} dockerd", log)
        return proc

    def stop(self) -> None:
        _stop(self.home / "dockerd.pid", "dockerd", f"the {self.name} engine")
        self.containerd_gone()

    def containerd_gone(self) -> None:
        """Wait for the engine's own containerd to end (it dies with a killed dockerd, not at once): a dockerd that
        starts while its pid file names a live process adopts it, and then waits in vain for it to answer."""
        pidfile = self.exec_root / "containerd/containerd.pid"
        deadline = time.monotonic() + 30
        while _pid_alive(pidfile, "containerd"):
            assert time.monotonic() < deadline, f"the {self.name} engine's containerd does not end"
            time.sleep(0.2)
        # Its zombie may never be reaped here (no init that reaps), and dockerd takes a zombie for a live containerd.
        pidfile.unlink(missing_ok=True)

    def remove_bridge(self) -> None:
        subprocess.run(["ip", "link", "delete", self.bridge], check=False, capture_output=True)
