"""The `buildah` backend: daemonless builds with the buildah CLI on this machine (rootful here; see README for
rootless on Kubernetes). Every call is a bounded subprocess; the build's output is parsed for its steps, the
failing step and the last lines of its log, as the docker backend does with the engine's stream.

Where buildah differs from a Docker engine, on purpose:
- image IDs are bare hex: they are given the `sha256:` prefix Docker uses, so a parent's ID (the digest of its
  config) is the same string on every engine and build keys agree;
- the build adds one step for the labels (`STEP 5/5: LABEL ...`): the step count shown is the Dockerfile's;
- a failing RUN ends with `Error: building at STEP "RUN ...": exit status N`: reported as
  "the command returned a non-zero code: N", the words podman's backend uses too;
- a registry on the loopback address (127.0.0.0/8, localhost, ::1) is plain HTTP, as Docker assumes by
  default: `--tls-verify=false` for those only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Sequence

from ..errors import BuildError
from .base import (IMAGE_LABEL, KEY_LABEL, PROJECT_LABEL, Cancelled, Endpoint, ImageFailed, Job, Progress, Report,
                   loopback, proxy_args, secret_path)
from .context import Snapshot, instructions

STEP = re.compile(r"STEP (\d+)/(\d+): (.*)\Z")
EXIT = re.compile(r".*\bexit status (\d+)\s*\Z")
RUN_EXITED = re.compile(r"subprocess exited with status \d+")
ERROR = re.compile(r"(?:Error|error): (.*)\Z")
LOG_TAIL = 15
# A check runs in sh with its output in CHECK_DIR/log: "$1" is the check's command, as `sh -c` would run it.
CHECK_DIR = "/run/dockwright-check"
CHECK_WRAP = f'exec >{CHECK_DIR}/log 2>&1; exec /bin/sh -c "$1"'
QUICK = 120.0  # seconds for a call that does not build, run or move an image
LONG = 3600.0  # seconds for a build, a check, a pull or a push
# chroot isolation runs rootful without user namespaces or a network setup: what CI containers allow.
ISOLATION = ("--isolation", "chroot")


def sha(image_id: str) -> str:
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def failure_message(lines: Sequence[str]) -> str:
    """buildah's words for a failed build, from its last `Error:` line."""
    for line in reversed(lines):
        m = ERROR.match(line.strip())
        if m:
            exited = EXIT.match(m.group(1))
            if exited and m.group(1).startswith("building at STEP"):
                return f"the command returned a non-zero code: {exited.group(1)}"
            return m.group(1).strip()
    return "buildah ended the build without an image"



def _relayed(out: list[str], code: int) -> list[str]:
    """What buildah relayed of a check, without its own last words about the exit status."""
    while out and code != 0 and (RUN_EXITED.fullmatch(out[-1].strip()) or EXIT.match(out[-1])):
        out.pop()
    return out

class BuildahBuilder:
    features = frozenset({"mounts", "secrets"})

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._bases: dict[str, str] = {}
        self._build_args = proxy_args(endpoint.proxy)
        self.program = shutil.which("buildah") or "buildah"

    def describe(self) -> str:
        return "buildah (this machine)"

    # -- running buildah ---------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = QUICK, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run([self.program, *args], capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, errors="replace")
        except subprocess.TimeoutExpired:
            raise ImageFailed(f"buildah {args[0]} did not finish within {timeout:.0f} s") from None
        except OSError as exc:
            raise ImageFailed(f"cannot run buildah: {exc.strerror or exc}", engine_down=True) from None
        if check and done.returncode != 0:
            raise ImageFailed(f"buildah {args[0]} failed: {self._words(done.stderr)}")
        return done

    @staticmethod
    def _words(stderr: str) -> str:
        lines = [line.strip() for line in stderr.split("\n") if line.strip()]
        if not lines:
            return "no message"
        m = ERROR.match(lines[-1])
        return (m.group(1) if m else lines[-1]).strip()

    def _stream(self, args: Sequence[str], cancel: threading.Event, on_line: Any,
                timeout: float = LONG) -> tuple[int, list[str]]:
        """Run buildah, calling on_line for each line it prints (stdout and stderr merged); bounded, cancellable."""
        lines: list[str] = []
        proc = subprocess.Popen([self.program, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
        deadline = time.monotonic() + timeout
        stopped: list[str] = []

        def watch() -> None:
            while proc.poll() is None:
                if cancel.is_set() or time.monotonic() > deadline:
                    stopped.append("cancel" if cancel.is_set() else "timeout")
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                        proc.wait(timeout=5)
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        try:
                            os.killpg(proc.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    return
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            lines.append(line)
            if len(lines) > 400:
                del lines[:200]
            on_line(line)
        code = proc.wait()
        watcher.join()
        if stopped == ["cancel"]:
            raise Cancelled()
        if stopped:
            raise ImageFailed(f"buildah {args[0]} did not finish within {timeout:.0f} s", log=lines[-LOG_TAIL:])
        return code, lines

    # -- the Builder protocol ------------------------------------------------------------------------

    def connect(self) -> None:
        if shutil.which("buildah") is None:
            raise BuildError(f"builder '{self.endpoint.name}' has type buildah, but buildah is not installed "
                             "on this machine; install it (Debian: apt-get install buildah) or pick another "
                             "builder with --builder")
        try:
            done = subprocess.run([self.program, "images", "--quiet"], capture_output=True, text=True,
                                  timeout=QUICK, stdin=subprocess.DEVNULL, errors="replace")
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(f"cannot run buildah (builder '{self.endpoint.name}'): {exc}") from None
        if done.returncode != 0:
            raise BuildError(f"buildah cannot open its image store (builder '{self.endpoint.name}'): "
                             f"{self._words(done.stderr)}")

    def close(self) -> None:
        pass

    def _inspect(self, ref: str) -> dict[str, Any] | None:
        done = self._run("inspect", "--type", "image", ref, check=False)
        if done.returncode != 0:
            return None
        try:
            data: dict[str, Any] = json.loads(done.stdout)
        except ValueError:
            return None
        return data

    def base_id(self, ref: str, report: Report, name: str) -> str:
        with self._lock:
            known = self._bases.get(ref)
        if known:
            return known
        data = self._inspect(ref)
        if data is None:
            report(Progress(name, "pulling", detail=ref))
            args = ["pull", "--quiet", *(["--tls-verify=false"] if loopback(ref) else []), ref]
            done = self._run(*args, timeout=LONG, check=False)
            data = self._inspect(ref) if done.returncode == 0 else None
            if data is None:
                raise ImageFailed(
                    f"parent image {ref} is not in buildah's store and cannot be pulled: {self._words(done.stderr)}\n"
                    f"hint: pull it (buildah pull {ref}), or copy it from Docker: "
                    f"buildah pull docker-daemon:{ref}")
        image_id = sha(str(data["FromImageID"]))
        with self._lock:
            self._bases[ref] = image_id
        return image_id

    def digests(self, ref: str) -> set[str]:
        data = self._inspect(ref)
        return {str(data["FromImageDigest"])} if data and data.get("FromImageDigest") else set()

    def user_of(self, ref: str) -> str:
        data = self._inspect(ref) or {}
        return str(((data.get("OCIv1") or {}).get("config") or {}).get("User") or "")

    def _labels(self, ref: str) -> tuple[str, dict[str, str]] | None:
        data = self._inspect(ref)
        if data is None:
            return None
        labels = ((data.get("OCIv1") or {}).get("config") or {}).get("Labels") or {}
        return sha(str(data["FromImageID"])), dict(labels)

    def find(self, job: Job, key: str) -> str | None:
        found = self._labels(job.tag)
        if found and found[1].get(KEY_LABEL) == key:
            return found[0]
        done = self._run("images", "--no-trunc", "--quiet", "--filter", f"label={KEY_LABEL}={key}", check=False)
        for line in done.stdout.split():
            image_id = sha(line.strip())
            self.tag(image_id, job.tag)
            return image_id
        return None

    def fetch(self, job: Job, key: str, report: Report) -> str | None:
        if not job.push_tag:
            return None
        report(Progress(job.name, "pulling", detail=job.push_tag))
        args = ["pull", "--quiet", *(["--tls-verify=false"] if loopback(job.push_tag) else []), job.push_tag]
        if self._run(*args, timeout=LONG, check=False).returncode != 0:
            return None  # not pushed yet: build it
        found = self._labels(job.push_tag)
        if not found or found[1].get(KEY_LABEL) != key:
            return None
        self.tag(found[0], job.tag)
        return found[0]

    def build(self, job: Job, key: str, snap: Snapshot, *, fresh: bool, report: Report,
              cancel: threading.Event) -> str:
        labels = {KEY_LABEL: key, IMAGE_LABEL: job.name, PROJECT_LABEL: job.project}
        steps = len(instructions(snap.dockerfile_bytes))
        log: deque[str] = deque(maxlen=LOG_TAIL)
        state: dict[str, int | None] = {"step": None}

        def on_line(line: str) -> None:
            m = STEP.match(line)
            if m:
                number = int(m.group(1))
                if number > steps:  # the step buildah adds for the labels
                    return
                state["step"] = number
                log.clear()
                report(Progress(job.name, "building", number, steps, m.group(3)))
            elif line and not line.startswith(("--> ", "COMMIT", "Getting image source", "Copying ",
                                               "Writing manifest", "Storing signatures")) \
                    and not ERROR.match(line) and not line.startswith("subprocess exited with status"):
                log.append(line)
                report(Progress(job.name, "output", detail=line))

        with tempfile.TemporaryDirectory(prefix="dockwright-buildah-") as tmp:
            context = Path(tmp) / "context"
            context.mkdir()
            with tempfile.TemporaryFile() as tar:
                snap.write_tar(tar)
                with tarfile.open(fileobj=tar) as archive:
                    archive.extractall(context)  # our own snapshot of files inside the project: no devices
            iidfile = Path(tmp) / "iid"
            args = ["build", *ISOLATION, "--layers", "--pull-never", "--iidfile", str(iidfile),
                    "-f", str(context / snap.dockerfile)]
            if fresh:
                args.append("--no-cache")
            for name, value in sorted(labels.items()):
                args += ["--label", f"{name}={value}"]
            # Proxy build args are buildah's builtin ones too: they reach RUN steps and stay out of the history.
            for name, value in sorted(self._build_args.items()):
                args += ["--build-arg", f"{name}={value}"]
            # A secret goes by where buildah reads it (a variable's name, a file's path), never by its value.
            for secret_id, kind, where in job.secrets:
                place = f"env={where}" if kind == "env" else f"src={secret_path(self.endpoint.root, where)}"
                args += ["--secret", f"id={secret_id},{place}"]
            args.append(str(context))
            code, lines = self._stream(args, cancel, on_line)
            if code != 0:
                raise ImageFailed(failure_message(lines), step=state["step"], log=list(log))
            try:
                image_id = iidfile.read_text().strip()
            except OSError:
                raise ImageFailed("buildah ended the build without an image", step=state["step"],
                                  log=list(log)) from None
        return sha(image_id)

    def check(self, image_id: str, command: str, cancel: threading.Event) -> tuple[int, list[str]]:
        """A throwaway working container of the image: `buildah from`, `buildah run`, `buildah rm`. The check's
        output goes to a file of a folder bound into the container, read here: what `buildah run` relays from
        a command that ends at once is now and then lost (buildah 1.28, chroot isolation, a busy machine)."""
        created = self._run("from", "--pull-never", "--quiet", image_id)
        container = created.stdout.strip().splitlines()[-1]
        try:
            with tempfile.TemporaryDirectory(prefix="dockwright-check-") as folder:
                os.chmod(folder, 0o777)  # the check runs as the image's user, who may not be root
                relayed: list[str] = []
                code, _ = self._stream(["run", *ISOLATION, "--volume", f"{folder}:{CHECK_DIR}:rw", container, "--",
                                        "/bin/sh", "-c", CHECK_WRAP, "sh", command], cancel, relayed.append)
                log = Path(folder) / "log"
                if not log.is_file() or log.is_symlink():
                    return code, _relayed(relayed, code)
                with open(log, "rb") as handle:  # the last lines are what a failure shows
                    tail = deque(handle, maxlen=400)
                return code, [line.decode("utf-8", "replace").rstrip() for line in tail]
        finally:
            self._run("rm", container, check=False)

    def tag(self, image_id: str, tag: str) -> None:
        self._run("tag", image_id.removeprefix("sha256:"), tag)

    def discard(self, image_id: str) -> None:
        try:
            self._run("rmi", "--force", image_id.removeprefix("sha256:"), check=False)
        except ImageFailed:
            pass

    def push(self, image_id: str, tag: str, report: Report, name: str) -> str | None:
        self.tag(image_id, tag)
        report(Progress(name, "pushing", detail=tag))
        with tempfile.TemporaryDirectory(prefix="dockwright-push-") as tmp:
            digest_file = os.path.join(tmp, "digest")
            args = ["push", "--quiet", "--digestfile", digest_file,
                    *(["--tls-verify=false"] if loopback(tag) else []), tag, f"docker://{tag}"]
            done = self._run(*args, timeout=LONG, check=False)
            if done.returncode != 0:
                raise ImageFailed(f"push to {tag} failed: {self._words(done.stderr)}")
            try:
                digest = Path(digest_file).read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                return None
        return digest if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else None
