"""What a generated Dockerfile must read back as: the instructions its ImageSpec implies, decoded by
BuildKit's own parser (pip package `dockerfile`), with every value exactly as the project holds it."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import dockerfile

from compiler.plan import CA_BUNDLE, HEAVY_REQUIREMENTS_IN_IMAGE, LOCAL_IN_IMAGE, REQUIREMENTS_IN_IMAGE, ImageSpec
from helpers import tool

LOCAL_DONE = f"  && rm -rf {LOCAL_IN_IMAGE}"  # how the parser joins the last line of the local packages' RUN

# hadolint rules we do not follow, and why (README "Linting the output" repeats this list):
#   DL3008 apt version pins: pins are the user's choice (`pkg=version` in apt_packages); pinning distro
#          versions by default breaks every build when the mirror moves on.
#   DL3059 consecutive RUNs: each `run:` entry is its own RUN on purpose (one entry, one cached layer,
#          exactly as written); users who want one layer write one entry joined with `&&`.
#   DL3066 non-numeric USER: dockwright creates the named user in the image itself, so it resolves.
HADOLINT_IGNORED = ("DL3008", "DL3059", "DL3066")


def docker_word(raw: str) -> str:
    """Decode one Dockerfile word the way BuildKit's shell lexer does (quotes, backslash escapes)."""
    out = []
    i = 0
    quote: str | None = None
    while i < len(raw):
        c = raw[i]
        if quote is None and c in "\"'":
            quote = c
        elif quote is not None and c == quote:
            quote = None
        elif c == "\\" and quote != "'" and i + 1 < len(raw):
            i += 1
            out.append(raw[i])
        else:
            out.append(c)
        i += 1
    assert quote is None, f"unterminated quote in {raw!r}"
    return "".join(out)


def _word(value: str) -> str:
    """What a value reads as once decoded: `$$` is a literal dollar, `$NAME` stays a reference."""
    return value.replace("$$", "$")


def intended(spec: ImageSpec, requirements_src: str) -> list[tuple[str, tuple[str, ...]]]:
    """(instruction, decoded values) in order, as render promises them; None-valued checks skipped."""
    out: list[tuple[str, tuple[str, ...]]] = [("FROM", (spec.from_ref,))]
    for key, value in spec.build_args:
        out.append(("ARG", (f"{key}={_word(value)}",)))
    if spec.as_root:
        out.append(("USER", ("root",)))
    if spec.apt:
        out.append(("RUN", ("<apt>",)))
    if spec.certificates:
        out += [("COPY", (src, dst)) for src, dst in spec.certificates]
        out.append(("RUN", (_bundle(spec),)))
        out.append(("ENV", ("PIP_CERT", CA_BUNDLE, "REQUESTS_CA_BUNDLE", CA_BUNDLE, "SSL_CERT_FILE", CA_BUNDLE)))
    if spec.python_setup:
        out.append(("RUN", ("<venv>",)))
        out.append(("ENV", ("VIRTUAL_ENV", "/opt/venv", "PATH", "/opt/venv/bin:$PATH")))
    if spec.heavy:
        out.append(("COPY", (requirements_src.replace("/requirements.txt", "/requirements-heavy.txt"),
                             HEAVY_REQUIREMENTS_IN_IMAGE)))
        out.append(("RUN", (f"<install{_index_flags(spec)}>",)))
    if spec.requirements:
        out.append(("COPY", (requirements_src, REQUIREMENTS_IN_IMAGE)))
        out.append(("RUN", (f"<install{_index_flags(spec)}>",)))
    if spec.env:
        out.append(("ENV", tuple(x for k, v in spec.env for x in (k, _word(v)))))
    for command in spec.run:
        out.append(("RUN", (command,)))
    if spec.local_packages:
        out += [("COPY", (src, dst)) for src, dst in spec.local_packages]
        packages = " ".join(dst for _, dst in spec.local_packages)
        out.append(("RUN", (f"<local{_index_flags(spec)}: {packages}>",)))
    if spec.create_user:
        out.append(("RUN", ("<user>",)))
    elif spec.workdir_owner:
        out.append(("RUN", (f"mkdir -p {spec.workdir}  && chown {spec.workdir_owner} {spec.workdir}",)))
    if spec.workdir:
        out.append(("WORKDIR", (spec.workdir,)))
    if spec.user:
        out.append(("USER", (spec.user,)))
    if spec.labels:
        out.append(("LABEL", tuple(x for k, v in spec.labels for x in (k, _word(v)))))
    for src, dst in spec.copy:
        out.append(("COPY", (src, dst)))
    if spec.entrypoint is not None:
        out.append(("ENTRYPOINT", spec.entrypoint))
    if spec.cmd is not None:
        out.append(("CMD", spec.cmd))
    return out


def _bundle(spec: ImageSpec) -> str:
    """The CA bundle's RUN, as the parser joins its lines: the system bundle, then each certificate."""
    system = "/etc/ssl/certs/ca-certificates.crt"
    cats = "".join(f" {' ' * 6}&& cat {shlex.quote(dst)} && echo" for _, dst in spec.certificates)
    return f"{{ if [ -f {system} ]; then cat {system} && echo; fi{cats}; }} > {CA_BUNDLE}"


def _index_flags(spec: ImageSpec) -> str:
    flags = ["--index-url", spec.index_url] if spec.index_url else []
    for url in spec.extra_index_urls:
        flags += ["--extra-index-url", url]
    return "".join(f" {shlex.quote(f)}" for f in flags)


def parsed(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """BuildKit's reading of text, with shell-form and quoted values decoded."""
    out = []
    for cmd in dockerfile.parse_string(text):
        values = tuple(cmd.value)
        if cmd.cmd in ("ENV", "LABEL"):
            values = tuple(docker_word(v) for v in values)
        elif cmd.cmd == "ARG":
            values = tuple(docker_word(v) for v in values)
        elif cmd.cmd == "RUN":
            if cmd.json:
                assert values[:2] == ("/bin/sh", "-c"), values
                values = (values[2],)
            values = (_tool_run(values[0]),)
        elif cmd.cmd in ("ENTRYPOINT", "CMD"):
            assert cmd.json, f"{cmd.cmd} must be in exec form: {cmd.original}"
        out.append((cmd.cmd, values))
    return out


def _tool_run(command: str) -> str:
    """The tool's own RUN steps, by a marker only they contain; user commands stay verbatim."""
    if command.endswith(LOCAL_DONE):
        # The local packages' install: its flags, and the staged packages as the shell splits them.
        install = _tool_run(command[:-len(LOCAL_DONE)])
        assert install.startswith("<install"), command
        words = shlex.split(command[:-len(LOCAL_DONE)])
        packages = " ".join(w for w in words if w.startswith(f"{LOCAL_IN_IMAGE}/"))
        return f"<local{install[len('<install'):-1]}: {packages}>"
    if command.startswith("apt-get update  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"):
        return "<apt>"
    if command.startswith('if ! python3 -c "import ensurepip, venv"'):
        return "<venv>"
    for prefix in ("python -m pip install --no-cache-dir --disable-pip-version-check",
                   "/opt/dockwright/uv/bin/uv pip install --python /opt/venv/bin/python --no-cache"):
        if command.startswith(prefix):
            return f"<install{_index_flags_of(command[len(prefix):])}>"
    if command.startswith("if [ ! -x /opt/dockwright/uv/bin/uv ]; then"):
        # The uv line, and the pip that installs uv, both get the index flags.
        bootstrap, _, install = command.partition("fi  && ")
        flags = _index_flags_of(bootstrap.split("--disable-pip-version-check", 1)[1])
        assert _tool_run(install) == f"<install{flags}>", command
        return f"<install{flags}>"
    if command.startswith("if ! id -u "):
        return "<user>"
    return command


def _index_flags_of(rest: str) -> str:
    """The --index-url / --extra-index-url flags (with their values) at the start of rest, as written."""
    words = shlex.split(rest)
    flags: list[str] = []
    while len(words) >= 2 and words[0] in ("--index-url", "--extra-index-url"):
        flags += words[:2]
        words = words[2:]
    return "".join(f" {shlex.quote(f)}" for f in flags)


def check_dockerfile(path: Path, spec: ImageSpec, requirements_src: str) -> None:
    text = path.read_text(encoding="utf-8")
    want = intended(spec, requirements_src)
    got = parsed(text)
    assert got == want, f"{path}: parser reads\n{json.dumps(got, indent=1)}\nbut we meant\n{json.dumps(want, indent=1)}"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    args = [tool("hadolint"), "--no-color"]
    for rule in HADOLINT_IGNORED:
        args += ["--ignore", rule]
    return subprocess.run([*args, str(path)], capture_output=True, text=True)


def spec_images(compiled: Any) -> list[tuple[str, ImageSpec, str]]:
    out = compiled.project.output.rstrip("/")
    return [(name, img.spec, f"{out}/images/{name}/requirements.txt")
            for name, img in sorted(compiled.plan.images.items()) if img.spec is not None]
