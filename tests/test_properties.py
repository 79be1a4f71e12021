"""Property-based tests (hypothesis) for two of dockwright's promises:

* promise 3: a user mistake is a ConfigError whose diagnostics are all located
  (`file:line:col`, the offending line, a caret), never any other exception;
* promise 5: a value never escapes its Dockerfile instruction: the BuildKit parser
  (pip package `dockerfile`) reads back exactly the instructions and values the plan holds.

Sections: 1. random YAML-ish text and bytes; 2. generated project dicts; 3. mutations of a
valid project; 4. injection of crafted strings into every field that reaches a Dockerfile;
5. regression tests: minimal reproducers of bugs these properties once found (now fixed).

No example is discarded for crashing: any exception other than a located ConfigError fails
the test. Every run is deterministic (derandomize, no database).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import dockerfile
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from compiler.errors import ConfigError, Diagnostic
from compiler.pipeline import Compiled, compile_project
from compiler.plan import CA_BUNDLE, HEAVY_REQUIREMENTS_IN_IMAGE, LOCAL_IN_IMAGE, REQUIREMENTS_IN_IMAGE, VENV, ImageSpec


def props(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )


PROJECT_FILE = "dockwright.yaml"

# Files that the generated projects may point at (copy sources, requirements, custom parents).
FIXTURE_FILES = {
    "requirements.txt": "numpy==1.26.4\n",
    "docker/base.Dockerfile": "FROM python:3.11-slim\n",
    # the final stage (FROM an earlier one) ends as the earlier stage's last user
    "docker/app.Dockerfile": "FROM ubuntu:22.04 AS os\nUSER nobody\nRUN true\nUSER app:app\nFROM os\nENV A=1\n",
    "src/app.py": "print('hi')\n",
    "conf/prod.yaml": "a: 1\n",
    "my file.txt": "x\n",
    "é.txt": "x\n",
    "-x.txt": "x\n",  # exists, but a path part starting with '-' is an error
    "certs/ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "certs/my ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",  # no final newline
    "certs/é.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "certs/key.pem": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",  # an error
    # Local packages: the project itself, and directories whose names need quoting in COPY and in the shell.
    "pyproject.toml": "[project]\nname = 'demo'\nversion = '1'\n",
    "libs/feature lib/pyproject.toml": "[project]\nname = 'featurelib'\nversion = '1'\n",
    "libs/é,x=1@2~+/setup.py": "",
    "libs/cfg/setup.cfg": "",
    "libs/none/README": "",  # not a package: an error
}


@contextmanager
def project_dir(content: str | bytes, files: dict[str, str] | None = None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dw-prop-") as tmp:
        root = Path(tmp)
        for rel, text in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        main = root / PROJECT_FILE
        if isinstance(content, bytes):
            main.write_bytes(content)
        else:
            main.write_bytes(content.encode("utf-8"))
        yield main


def outcome(main: Path) -> Compiled | None:
    """Property 1: compile_project returns a Compiled or raises a ConfigError with located diagnostics."""
    try:
        compiled = compile_project(main)
    except ConfigError as exc:
        check_config_error(exc, main.parent)
        return None
    for warning in compiled.warnings:
        check_diagnostic(warning, main.parent)
    return compiled


# -------------------------------------------------------------------------------------------------
# Diagnostics


UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The line breaks YAML 1.1 (libyaml) counts; file line counts below use them.
YAML_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
KEY_MESSAGE = re.compile(r"^(?:unknown|duplicate) key '([A-Za-z0-9_-]+)'")


def _file_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


def _line_count(path: Path) -> int:
    data = path.read_bytes()
    text = _file_text(path)
    if text is None:
        return data.count(b"\n") + 1
    return len(YAML_BREAK.split(text))


def check_config_error(exc: ConfigError, root: Path) -> None:
    assert exc.diagnostics, "ConfigError without diagnostics"
    for d in exc.diagnostics:
        assert d.severity == "error"
        check_diagnostic(d, root)
    for w in exc.warnings:
        check_diagnostic(w, root)
    assert isinstance(exc.render(), str) and isinstance(exc.render(color=True), str)
    assert str(exc)


def check_diagnostic(d: Diagnostic, root: Path) -> None:
    loc = d.location
    assert loc is not None, f"diagnostic without a location: {d.format()!r}"
    file = Path(loc.file)
    assert file.is_file(), f"location in a file that does not exist: {file}"
    assert file.resolve().is_relative_to(root.resolve()), f"location outside the project: {file}"
    assert 1 <= loc.line <= _line_count(file) + 1, f"line {loc.line} beyond {file.name}: {d.format()!r}"
    assert loc.col >= 1, f"column {loc.col} < 1: {d.format()!r}"
    assert "\n" not in loc.source_line
    if _file_text(file) is not None:  # a file YAML read: the shown line is one of YAML's lines
        assert not YAML_BREAK.search(loc.source_line), f"line break in the shown line: {d.format()!r}"
    assert d.message.strip(), "empty message"
    text = d.format()
    assert f":{loc.line}:{loc.col}: " in text
    head, *rest = text.split("\n")
    assert not UNPRINTABLE.search(head), f"a control character or line break in the message: {head!r}"
    assert len(rest) in (len(d.notes), len(d.notes) + 2), f"a diagnostic is its head, source line, caret, notes: {text!r}"
    d.format(color=True)
    d.format(cwd=root)
    for _, at in d.notes:
        if at is not None:
            assert Path(at.file).is_file() and at.line >= 1 and at.col >= 1
    # The caret of a key error (copy entries included) points at the key, whatever line breaks the file uses.
    m = KEY_MESSAGE.match(d.message)
    if m and loc.source_line and m.group(1) in loc.source_line:
        rest = loc.source_line[loc.col - 1:]
        assert re.match(r"(?:[&!]\S*\s+)*[\"']?" + re.escape(m.group(1)), rest), \
            f"caret does not point at the key: {d.format()!r}"


# -------------------------------------------------------------------------------------------------
# Output oracle: every Dockerfile, parsed by BuildKit, says exactly what the plan's spec says.


# An unescaped `$` (a variable reference Docker expands) reads as this marker: no value holds it
# (a control character is a schema error in ENV, LABEL and ARG values).
REF = "\x01"
_DOLLAR = re.compile(r"\$\$|\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})|\$")


def intended(value: str) -> str:
    """What an ENV/LABEL/ARG value must read as (by design: `$NAME` and `${NAME}` expand as in any
    Dockerfile; `$$` and every other `$` are a literal dollar), references marked with REF."""
    return _DOLLAR.sub(lambda m: "$" if m.group(0) in ("$$", "$") else REF + m.group(0)[1:], value)


def _decode(word: str, *, strict: bool) -> str:
    """A Dockerfile word as BuildKit's shell lexer reads it; an unescaped `$` becomes REF.

    strict: backslash escapes any next character inside double quotes; else BuildKit's rule
    (only `"`, `$` and backslash are escaped, other backslashes stay).
    """
    out: list[str] = []
    i, n = 0, len(word)
    while i < n:
        c = word[i]
        if c == "\\":
            if i + 1 < n:
                out.append(word[i + 1])
            i += 2
        elif c == "'":
            j = word.find("'", i + 1)
            assert j >= 0, f"unterminated ' in {word!r}"
            out.append(word[i + 1:j])
            i = j + 1
        elif c == '"':
            i += 1
            while True:
                assert i < n, f"unterminated double quote in {word!r}"
                c = word[i]
                if c == '"':
                    i += 1
                    break
                if c == "$":
                    c = REF
                if c == "\\" and i + 1 < n and (strict or word[i + 1] in '"$\\'):
                    out.append(word[i + 1])
                    i += 2
                    continue
                out.append(c)
                i += 1
        else:
            out.append(REF if c == "$" else c)
            i += 1
    return "".join(out)


def decode(word: str) -> str:
    strict, buildkit = _decode(word, strict=True), _decode(word, strict=False)
    assert strict == buildkit, f"{word!r} reads differently under the two escape rules"
    return strict


Check = Callable[[Any], None]


def _exact(value: tuple[str, ...], ins: Any) -> None:
    assert ins.flags == (), f"unexpected flags {ins.flags} on {ins.original!r}"
    assert ins.value == value, f"{ins.cmd} reads {ins.value!r}, expected {value!r}"


def _arg(key: str, value: str, ins: Any) -> None:
    assert ins.flags == () and len(ins.value) == 1, ins.original
    k, eq, raw = ins.value[0].partition("=")
    assert (k, eq) == (key, "="), ins.original
    assert decode(raw) == intended(value), f"ARG {key} reads {decode(raw)!r}, expected {intended(value)!r}"


def _pairs(pairs: tuple[tuple[str, str], ...], ins: Any) -> None:
    assert ins.flags == () and not ins.json, ins.original
    values = ins.value
    assert len(values) == 2 * len(pairs), f"{ins.cmd} has {len(values) // 2} pairs, expected {len(pairs)}"
    for (key, value), i in zip(pairs, range(0, len(values), 2)):
        assert values[i] == key, f"{ins.cmd} key {values[i]!r}, expected {key!r}"
        got = decode(values[i + 1])
        assert got == intended(value), f"{ins.cmd} {key} reads {got!r}, expected {intended(value)!r}"


def _keys(keys: list[str], ins: Any) -> None:
    assert ins.flags == () and list(ins.value[::2]) == keys, ins.original


def _words(ins: Any) -> list[str]:
    assert ins.flags == () and not ins.json and len(ins.value) == 1, ins.original
    return shlex.split(ins.value[0])


def _tool_run(contains: list[str], ins: Any) -> None:
    words = _words(ins)
    for word in contains:
        assert word in words, f"{word!r} is not a word of {ins.original!r}"


def _local_install(spec: ImageSpec, ins: Any) -> None:
    """The local packages' RUN: the index flags, installer_args, then exactly the staged packages (each one
    shell word), then the staging directory removed."""
    words = _words(ins)
    assert words[-4:] == ["&&", "rm", "-rf", LOCAL_IN_IMAGE], ins.original
    packages = [dst for _, dst in spec.local_packages]
    assert words[-4 - len(packages):-4] == packages, f"packages {packages!r} read as {words!r}"
    # locked: deps come from the lock, so --no-deps stands right before the packages (a user's own --no-deps
    # among installer_args stands there too when it is their last one)
    user_no_deps = bool(spec.installer_args) and spec.installer_args[-1] == "--no-deps"
    assert (words[-5 - len(packages)] == "--no-deps") == (spec.locked or user_no_deps), ins.original
    if spec.locked:
        words = words[:-5 - len(packages)] + words[-4 - len(packages):]
    args = [*(["--index-url", spec.index_url] if spec.index_url else []),
            *(w for url in spec.extra_index_urls for w in ("--extra-index-url", url)), *spec.installer_args]
    before = words[:-4 - len(packages)]
    assert before[len(before) - len(args):] == args, f"installer args {args!r} read as {words!r}"
    for _, dst in spec.local_packages:
        assert dst.startswith(f"{LOCAL_IN_IMAGE}/") and dst.endswith("/") and "/../" not in dst, dst


def _install(spec: ImageSpec, ins: Any, path: str = REQUIREMENTS_IN_IMAGE) -> None:
    """The install RUN ends with the index flags, then installer_args, then (locked) `--require-hashes
    --no-deps`, then `-r requirements`."""
    words = _words(ins)
    assert words[-2:] == ["-r", path], ins.original
    args = [*(["--index-url", spec.index_url] if spec.index_url else []),
            *(w for url in spec.extra_index_urls for w in ("--extra-index-url", url)), *spec.installer_args,
            *(["--require-hashes", "--no-deps"] if spec.locked else [])]
    if args:
        assert words[-2 - len(args):-2] == args, f"installer args {args!r} read as {words!r}"


def _bundle(certificates: tuple[tuple[str, str], ...], ins: Any) -> None:
    """The CA bundle: the system's when present, then each certificate, in order, into CA_BUNDLE."""
    words = _words(ins)
    assert words[-2:] == [">", CA_BUNDLE], ins.original
    cats = [words[i + 1] for i, w in enumerate(words) if w == "cat"]
    assert cats == ["/etc/ssl/certs/ca-certificates.crt"] + [dst for _, dst in certificates], ins.original


def _user_run(command: str, ins: Any) -> None:
    assert ins.flags == (), f"RUN {command!r} became flags {ins.flags}"
    if ins.json:
        assert ins.value == ("/bin/sh", "-c", command), f"RUN {command!r} reads {ins.value!r}"
    else:
        # Exactly the command: one with whitespace (ASCII or Unicode) at either end is in exec form.
        assert ins.value == (command,), f"RUN {command!r} reads {ins.value!r}"


def _copy(src: str, dst: str, owner: str | None, ins: Any) -> None:
    flags = (f"--chown={owner}",) if owner else ()
    assert ins.flags == flags, f"COPY flags {ins.flags}, expected {flags}"
    assert ins.value == (src, dst), f"COPY reads {ins.value!r}, expected {(src, dst)!r}"


def _exec(items: tuple[str, ...], ins: Any) -> None:
    assert ins.flags == () and ins.json, ins.original
    assert ins.value == tuple(items), f"{ins.cmd} reads {ins.value!r}, expected {items!r}"


def expected_instructions(spec: ImageSpec, requirements_src: str) -> list[tuple[str, Check]]:
    """What a Dockerfile for spec must hold, instruction by instruction (templates/Dockerfile.j2)."""
    out: list[tuple[str, Check]] = [("FROM", partial(_exact, (spec.from_ref,)))]
    out += [("ARG", partial(_arg, k, v)) for k, v in spec.build_args]
    if spec.as_root:
        out.append(("USER", partial(_exact, ("root",))))
    if spec.apt:
        out.append(("RUN", partial(_tool_run, list(spec.apt))))
    if spec.certificates:
        out += [("COPY", partial(_copy, src, dst, None)) for src, dst in spec.certificates]
        out.append(("RUN", partial(_bundle, spec.certificates)))
        out.append(("ENV", partial(_pairs, (("PIP_CERT", CA_BUNDLE), ("REQUESTS_CA_BUNDLE", CA_BUNDLE),
                                            ("SSL_CERT_FILE", CA_BUNDLE)))))
    if spec.python_setup:
        out.append(("RUN", partial(_tool_run, [VENV])))
        out.append(("ENV", partial(_keys, ["VIRTUAL_ENV", "PATH"])))
    if spec.heavy:
        heavy_src = requirements_src.replace("/requirements.txt", "/requirements-heavy.txt")
        out.append(("COPY", partial(_copy, heavy_src, HEAVY_REQUIREMENTS_IN_IMAGE, None)))
        out.append(("RUN", partial(_install, spec, path=HEAVY_REQUIREMENTS_IN_IMAGE)))
    if spec.requirements:
        out.append(("COPY", partial(_copy, requirements_src, REQUIREMENTS_IN_IMAGE, None)))
        out.append(("RUN", partial(_install, spec)))
    if spec.env:
        out.append(("ENV", partial(_pairs, spec.env)))
    out += [("RUN", partial(_user_run, command)) for command in spec.run]
    if spec.local_packages:
        out += [("COPY", partial(_copy, src, dst, None)) for src, dst in spec.local_packages]
        out.append(("RUN", partial(_local_install, spec)))
    owned = [spec.workdir_owner, spec.workdir] if spec.workdir_owner and spec.workdir else []
    if spec.create_user:
        assert spec.user is not None
        out.append(("RUN", partial(_tool_run, [spec.user] + owned)))
    elif spec.workdir_owner:
        out.append(("RUN", partial(_tool_run, owned)))
    if spec.workdir:
        out.append(("WORKDIR", partial(_exact, (spec.workdir,))))
    if spec.user:
        out.append(("USER", partial(_exact, (spec.user,))))
    if spec.labels:
        out.append(("LABEL", partial(_pairs, spec.labels)))
    out += [("COPY", partial(_copy, src, dst, spec.owner)) for src, dst in spec.copy]
    if spec.entrypoint is not None:
        out.append(("ENTRYPOINT", partial(_exec, spec.entrypoint)))
    if spec.cmd is not None:
        out.append(("CMD", partial(_exec, spec.cmd)))
    return out


def _root(user: str | None) -> bool:
    return user is not None and user.split(":")[0] in ("root", "0")


def check_users(compiled: Compiled) -> None:
    """Every RUN runs as root, whatever user the parent image ends as; the image ends as its environment's
    user, else as its parent's. Where compile cannot know the parent's user and switched to root, the manifest
    says so (build checks the parent)."""
    plan = compiled.plan
    manifest = json.loads(compiled.files["manifest.json"])
    ends: dict[str, str | None] = {}
    for name in manifest["build_order"]:
        image = plan.images[name]
        if not image.generated:
            continue
        if image.parent is not None and plan.images[image.parent].generated:
            start = ends[image.parent]
        else:
            base = plan.environments[image.environments[0]].base
            assert base is not None
            start = PARENT_USERS.get(base.value.dockerfile or base.value.image or "")
            if base.value.image and base.value.image.startswith("python:"):
                start = "root"
        current = start
        for ins in dockerfile.parse_string(compiled.files[f"images/{name}/Dockerfile"]):
            if ins.cmd == "USER":
                current = ins.value[0]
            elif ins.cmd == "RUN":
                assert _root(current), f"{name}: {ins.original!r} runs as {current or 'an unknown user'}"
        flagged = manifest["images"][name].get("needs_root_parent", False)
        if image.user is not None:
            assert current == image.user, f"{name} ends as {current}, not its user {image.user}"
        elif start is not None:
            assert current == start, f"{name} ends as {current}, not as its parent ({start})"
        else:
            assert flagged == (current is not None), f"{name}: ends as {current}, needs_root_parent {flagged}"
        assert not flagged or (start is None and current == "root" and image.user is None), name
        ends[name] = current


_PIP: list[Any] = []


def pip_reads(text: str) -> list[str]:
    """The requirements pip's own requirements-file parser reads from text; any option line is an error."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import RequirementsFileParser, get_line_parser

    if not _PIP:
        _PIP.append(RequirementsFileParser(PipSession(), get_line_parser(None)))
    with tempfile.TemporaryDirectory(prefix="dw-pip-") as tmp:
        path = Path(tmp) / "requirements.txt"
        path.write_bytes(text.encode("utf-8"))
        out = []
        for line in _PIP[0].parse(str(path), constraint=False):
            options = {k: v for k, v in vars(line.opts).items() if v not in (None, [], False) and k != "format_control"}
            hashes = options.pop("hashes", {})  # a locked line's --hash options, the only ones allowed
            assert line.is_requirement and not line.is_editable and not options, f"pip reads options {options}"
            assert set(hashes) <= {"sha256"}, hashes
            out.append(line.requirement + "".join(f" --hash=sha256:{h}" for h in hashes.get("sha256", [])))
        return out


def check_output(compiled: Compiled) -> None:
    """Property 2's output half: BuildKit reads back exactly the spec, no more, no less."""
    out = compiled.project.output.rstrip("/")
    plan = compiled.plan
    json.loads(compiled.files["manifest.json"])
    check_users(compiled)
    for name, image in sorted(plan.images.items()):
        path = f"images/{name}/Dockerfile"
        if not image.generated:
            assert path not in compiled.files
            continue
        spec = image.spec
        assert spec is not None
        text = compiled.files[path]
        parsed = dockerfile.parse_string(text)
        expected = expected_instructions(spec, f"{out}/images/{name}/requirements.txt")
        got_cmds = [ins.cmd for ins in parsed]
        want_cmds = [cmd for cmd, _ in expected]
        assert got_cmds == want_cmds, f"{path}: instructions {got_cmds} != {want_cmds}\n{text}"
        for ins, (_, check) in zip(parsed, expected):
            assert ins.heredocs == (), f"{path}: heredoc in {ins.original!r}"
            check(ins)
        # requirements.txt holds exactly the spec's requirements, one per line.
        for req_path, reqs in ((f"images/{name}/requirements.txt", spec.requirements),
                               (f"images/{name}/requirements-heavy.txt", spec.heavy)):
            if reqs:
                lines = [ln for ln in compiled.files[req_path].split("\n") if ln and not ln.startswith("#")]
                assert lines == list(reqs), f"{req_path}: {lines!r} != {reqs!r}"
                assert pip_reads(compiled.files[req_path]) == list(reqs), req_path
            else:
                assert req_path not in compiled.files
        # The spec's values are the effective environment's.
        for env_name in image.environments:
            env = plan.environments[env_name]
            for section in ("env", "labels", "build_args"):
                effective = {k: v.value for k, v in getattr(env, section).items()}
                pairs = dict(getattr(spec, section))
                # An environment that only adds build_args reuses its parent's image (ARGs matter only to
                # RUN), so build_args are exact only for the environment the image was made for.
                if section == "build_args" and env_name != name:
                    continue
                for k, v in pairs.items():
                    assert effective.get(k) == v, f"{env_name}.{section}.{k}: spec {v!r}, effective {effective.get(k)!r}"
                if not spec.layered:
                    assert pairs == effective, f"{env_name}.{section}: spec {pairs!r} != effective {effective!r}"
            if not spec.layered:
                assert list(spec.run) == [r.value for r in env.run]
                assert [src for src, _ in spec.certificates] == sorted(env.certificates)
                assert [dst for _, dst in spec.local_packages] == [
                    f"{LOCAL_IN_IMAGE}/" + ("" if p.value == "." else f"{p.value}/") for p in env.local_packages]
            if spec.requirements:
                assert spec.index_url == (env.index_url.value if env.index_url else None) or env_name != name
                assert spec.extra_index_urls == tuple(u.value for u in env.extra_index_urls) or env_name != name


# =================================================================================================
# 1. Random YAML-ish text


YAML_TOKENS = [
    "\n", "\n", "\n", " ", "  ", "    ", "\t", ":", ": ", "- ", "-", "[", "]", "{", "}", ",", ", ", "'", '"',
    "&a ", "*a", "&b ", "*b", "<<: ", "<<", "---\n", "...\n", "# c", "#", "? ", "!", "!!str ", "!!int ", "!!float ",
    "!!bool ", "!!null ", "!!binary ", "!!timestamp ", "!!set ", "!!omap ", "!!python/object:os.system ", "!x ",
    "|", "|-", ">", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "version", "version: 1\n", "project", "project: demo\n",
    "environments", "base", "env", "python", "\"3.11\"", "requirements", "pipelines", "steps", "after", "runner",
    "server", "include", "envs/*.yaml", "**", "extends", "integrations", "builders", "copy", "run", "user",
    "1", "3.11", "3.10", "0x1F", "1e3", ".inf", ".nan", "null", "~", "true", "yes", "no", "on", "2001-12-14",
    "2001-13-45", "0000-01-01", "\\", "\\n", "\x00", "\u2028", "\u2029", "\x85", "\r", "\r\n", "\ufeff", "é",
    "🙂", "$(rm -rf /)", "<<EOF", "x", "y", "=", "@", "`", "%", "\x1b", "\x7f",
]

token_text = st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map("".join)

PREFIX = "version: 1\nproject: demo\nenvironments:\n  base:\n    python: '3.11'\n"

yamlish_text = st.one_of(
    st.text(max_size=200),
    token_text,
    token_text.map(lambda t: PREFIX + t),
    st.tuples(token_text, st.sampled_from(["", "  ", "    ", "\t"])).map(
        lambda p: PREFIX + "\n".join(p[1] + line for line in p[0].split("\n"))),
)


@props(800)
@given(text=yamlish_text)
def test_random_text_is_compiled_or_located(text: str) -> None:
    with project_dir(text) as main:
        compiled = outcome(main)
        if compiled is not None:
            check_output(compiled)


BAD_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80",
             b"\xef\xbb\xbf", b"\xff\xfe", b"\x00"]


@st.composite
def yamlish_bytes(draw: Any) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return bytes(draw(st.binary(max_size=200)))
    base = (PREFIX if kind == 2 else "") + draw(token_text)
    data = base.encode("utf-8")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(BAD_BYTES)) + data[at:]
    return data


@props(300)
@given(data=yamlish_bytes())
def test_random_bytes_are_compiled_or_located(data: bytes) -> None:
    with project_dir(data) as main:
        compiled = outcome(main)
        if compiled is not None:
            check_output(compiled)


def _deep(kind: int, n: int) -> str:
    if kind == 0:
        return "x: " + "[" * n + "]" * n
    if kind == 1:
        return "x: " + "{a: " * n + "1" + "}" * n
    if kind == 2:
        return "".join(" " * i + "k:\n" for i in range(n))
    if kind == 3:
        return "x:\n" + "".join("  " * (i + 1) + "- \n" for i in range(n))
    return "environments:\n  base:\n    env: " + "[" * n + "]" * n


@props(30)
@given(kind=st.integers(0, 4), n=st.integers(50, 3000), prefix=st.booleans())
def test_deep_nesting_is_located(kind: int, n: int, prefix: bool) -> None:
    # Depths around the switch from libyaml to the pure-Python parser (500 open brackets) are
    # included; far deeper nesting is test_regression_very_deep_nesting_is_a_config_error.
    text = ("version: 1\nproject: demo\n" if prefix else "") + _deep(kind, n) + "\n"
    with project_dir(text) as main:
        assert outcome(main) is None


# =================================================================================================
# 2. Structured generation


# "runner"/"server" + "settings" and "<env>" + "parent" make image names that can collide.
NAMES = ["base", "trainer", "parent", "settings", "runner", "server", "a", "b-c", "x_1", "Bad", "x.y"]
TRICKY = [
    "", " ", "x", "x y", 'say "hi"', "it's", "$(rm -rf /)", "`id`", "${HOME}", "$HOME", "\\$HOME", "a\\", "\\",
    "\\\\", "\\n", "a\nFROM evil", "a\r\nFROM evil", "a\rFROM evil", "line \\\nFROM evil", "<<EOF\nx\nEOF",
    "cat <<-EOF", "# escape=`", "#x", '["json"]', "[", "\x00", "nul\x00x", "\u2028", "a\u2029b", "\x85", "\u00a0",
    "é", "日本", "🙂", "a\tb", "=", "a=b", "'", '"', "\ufeff", "-", "\\\"", "ARG X", "\x1b[31m", "1", "yes", "null",
    "--network=host echo hi", "--mount=type=bind,source=/,target=/x cat /x", " -x", "\u00a0echo hi", "echo hi\u00a0",
    "\x85echo hi", "echo hi\u2028", "\u3000echo\u3000", "\x1cecho hi\x1f", "--pre\nFROM evil",
]
TRICKY_ALPHABET = list("a b\"'\\$()`\n\r\t#<=-[]{}:,&*!|>%@") + ["\x00", "\u2028", "\x85", "\u00a0", "é", "🙂", "\ufeff",
                                                                 "\u3000", "\x1c"]
tricky = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.sampled_from(TRICKY_ALPHABET), max_size=12),
    st.text(max_size=8),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), tricky)
junk = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.one_of(tricky, st.sampled_from(NAMES)),
                                                                     inner, max_size=3)),
                    max_leaves=6)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything."""
    return st.one_of(valid, valid, valid, junk)


def small_lists(inner: st.SearchStrategy[Any], n: int = 3) -> st.SearchStrategy[list[Any]]:
    return st.lists(inner, max_size=n)


names = st.sampled_from(NAMES)
env_keys = st.sampled_from(["A", "PYTHONUNBUFFERED", "_X", "PATH", "LANG", "1A", "A-B", "a b"])
label_keys = st.sampled_from(["team", "org.opencontainers.image.title", "a/b", "x", "-x", "a b", "é"])
map_values = st.one_of(tricky, tricky, st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False))
# Commands (run, checks) and installer args are any tricky text: leading '-' or "--flag", Unicode
# whitespace at either end, newlines, control characters.
commands = tricky
installer_args = tricky
index_urls = st.sampled_from(["https://pypi.example.com/simple", "http://10.0.0.1:8080/simple/", "ftp://x/simple",
                              "https://user:pass@pypi.example.com/simple", "https://tok@x/simple", "https://",
                              "https://m.example/s?a=1&b='x'&c=$(id)", "https://x:99999/", "pypi.example.com"])
copy_sources = st.sampled_from(["src/", "src", "src/app.py", "conf/prod.yaml", "my file.txt", "é.txt", ".",
                                "missing.txt", "../x", "/abs", "a*b", "src/../conf/prod.yaml", "./conf/prod.yaml",
                                "conf//prod.yaml", "x\ny", "", "-x.txt", "--from=alpine", "src/-x", "conf/--chown=0"])
copy_dests = st.one_of(st.sampled_from(["/app/conf.yaml", "rel/x.yaml", "/x y/", "dir/", "/$(x)", "a\nb", "/a/../b",
                                        "", " ", "/é", "--chown=root", "-x", "/app/-x/", "/opt/", "."]), tricky)
local_packages = st.sampled_from([".", "./", "libs/feature lib", "libs/feature lib/", "libs/é,x=1@2~+", "libs/cfg",
                                  "libs/none", "libs", "missing", "pyproject.toml", "../x", "/abs", "libs/*", "x\ny",
                                  "", "-x", "libs/-x", "libs/../libs/cfg", "generated"])
copy_items = st.one_of(copy_sources, st.fixed_dictionaries({"from": copy_sources, "to": copy_dests}),
                       st.fixed_dictionaries({"from": copy_sources}, optional={"to": copy_dests, "mode": tricky}))

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "description": tricky,
    "extends": names,
    "parent_image": st.sampled_from(["python:3.11-slim", "ubuntu:22.04", "nvidia/cuda:12.1.0-runtime-ubuntu22.04",
                                     "localhost:5000/ml/base:1", "alpine", "UPPER:1", "x y", "python:3.11\nRUN x"]),
    "python": st.sampled_from(["3.11", 3.11, 3.1, "3.12.1", "2.7", 3, "3.11\n", "3.11 "]),
    "dockerfile": st.sampled_from(["docker/base.Dockerfile", "dockwright.yaml", "missing.Dockerfile", "/etc/passwd",
                                   "../x", "docker"]),
    "context": st.sampled_from([".", "docker", "missing", "src/app.py", "../"]),
    "installer": st.sampled_from(["pip", "uv", "conda"]),
    "installer_args": small_lists(st.one_of(st.sampled_from(["--pre", "--no-deps", "--index-url=http://x/simple"]),
                                            installer_args)),
    "apt_packages": small_lists(st.sampled_from(["git", "libgomp1", "curl=7.88.1-10+deb12u5", "libc6:amd64", "Git",
                                                 "-y", "a;rm", "x\ny", "g++", "git"])),
    "requirements": small_lists(st.sampled_from(["pandas==2.2.2", "torch>=2,<3", "scikit-learn[extra]>=1.4",
                                                 "requests ; python_version > '3'", "-e .", "bad req!!", "x\ny",
                                                 "numpy==1.26.4 # c", "numpy<2", "Pandas", "éx"])),
    "requirements_files": small_lists(st.sampled_from(["requirements.txt", "missing.txt", "src", "dockwright.yaml"])),
    "integrations": small_lists(names),
    "env": st.dictionaries(env_keys, map_values, max_size=4),
    "build_args": st.dictionaries(env_keys, map_values, max_size=3),
    "labels": st.dictionaries(label_keys, map_values, max_size=3),
    "user": st.sampled_from(["app", "root", "0", "1000", "app-user_1", "App", "a b", "$(id)", "x\ny"]),
    "workdir": st.sampled_from(["/app", "/srv/my app", "/a/é", "relative", "/a/../b", "/$(x)", "/opt/x-1.0", "/"]),
    "copy": small_lists(copy_items),
    "local_packages": small_lists(local_packages),
    "run": small_lists(commands),
    "entrypoint": small_lists(tricky),
    "cmd": small_lists(tricky),
    "checks": small_lists(commands),
    "certificates": small_lists(st.sampled_from(["certs/ca.pem", "./certs/ca.pem", "certs/my ca.pem", "certs/é.pem",
                                                 "certs/key.pem", "src/app.py", "missing.pem", "certs", "/etc/x.pem",
                                                 "../x.pem", "certs/*.pem", "-x.txt"])),
    "index_url": st.one_of(index_urls, tricky),
    "extra_index_urls": small_lists(st.one_of(index_urls, tricky)),
}
ENV_ONLY = {"extends", "parent_image", "python", "dockerfile", "context", "installer", "installer_args", "user",
            "workdir", "copy", "entrypoint", "cmd", "apt_packages", "requirements_files", "integrations"}
INTEGRATION_KEYS = ["description", "apt_packages", "requirements", "requirements_files", "env", "build_args",
                    "labels", "run", "checks", "certificates", "index_url", "extra_index_urls"]
ENVIRONMENT_KEYS = sorted(FIELDS)
SETTINGS_KEYS = [k for k in ENVIRONMENT_KEYS if k != "extends"]
TYPOS = ["requirement", "envs", "apt", "label", "entry_point", "python_version", "Extends"]


@st.composite
def fragment(draw: Any, kind: str) -> Any:
    keys = {"environment": ENVIRONMENT_KEYS, "settings": SETTINGS_KEYS, "integration": INTEGRATION_KEYS}[kind]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=6))
    if kind == "environment" and draw(st.integers(0, 3)) > 0:
        # Most environments get a plausible base, so that many projects compile.
        chosen = [k for k in chosen if k not in ("python", "parent_image", "dockerfile", "extends")]
        base = draw(st.sampled_from(["python", "python", "parent_image", "extends", "dockerfile"]))
        chosen.insert(draw(st.integers(0, len(chosen))), base)
    out: dict[str, Any] = {}
    for key in chosen:
        out[key] = draw(maybe(FIELDS[key]) if draw(st.integers(0, 5)) == 0 else FIELDS[key])
    if draw(st.integers(0, 15)) == 0:
        out[draw(st.sampled_from(TYPOS))] = draw(junk)
    return out


@st.composite
def step(draw: Any) -> Any:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["after"] = draw(st.one_of(small_lists(names), names, junk))
    if draw(st.integers(0, 2)) == 0:
        out["environment"] = draw(maybe(names))
    if draw(st.integers(0, 2)) == 0:
        out["settings"] = draw(st.one_of(fragment("settings"), st.none()))
    if draw(st.integers(0, 15)) == 0:
        out[draw(st.sampled_from(["depends_on", "env", "image"]))] = draw(junk)
    return draw(st.one_of(st.just(out), st.just(out), st.just(out), st.none()))


@st.composite
def pipeline(draw: Any) -> Any:
    out: dict[str, Any] = {}
    if draw(st.integers(0, 3)) > 0:
        out["environment"] = draw(maybe(names))
    if draw(st.integers(0, 10)) > 0:
        out["steps"] = draw(maybe(st.dictionaries(names, step(), max_size=4)))
    return out


@st.composite
def target(draw: Any) -> Any:
    out: dict[str, Any] = {"environment": draw(maybe(names))}
    if draw(st.booleans()):
        out["settings"] = draw(fragment("settings"))
    return draw(maybe(st.just(out)))


@st.composite
def wild_projects(draw: Any) -> dict[str, Any]:
    """Plausible projects with random mistakes anywhere: most fail validation."""
    d: dict[str, Any] = {"version": draw(st.one_of(st.just(1), st.just(1), st.just(1), junk)),
                         "project": draw(st.one_of(st.just("demo"), st.just("demo"), st.just("ml-2"), junk))}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "description": tricky,
        "output": st.sampled_from(["generated", "out/dir", "my out", ".", "/abs", "../x", "x\ny"]),
        "registry": st.sampled_from(["localhost:5000/ml", "ghcr.io/org/team", "Bad Registry", "x:1/y:2"]),
        "integrations": st.dictionaries(names, fragment("integration"), max_size=2),
        "runner": target(),
        "server": target(),
        "pipelines": st.dictionaries(names, pipeline(), max_size=2),
        "builders": st.sampled_from([{"local": {"type": "docker"}},
                                     {"remote": {"type": "docker", "url": "tcp://10.1.2.3:2376",
                                                 "tls": {"ca": "c/ca.pem", "verify": True}}},
                                     {"x": {"type": "kaniko"}}, {"local": None},
                                     {"p": {"type": "docker", "proxy": {"http": "http://u:pw@proxy:3128", "htps": "x",
                                                                        "no_proxy": "a\nb", "https": "$X"}}},
                                     {"local": {"type": "docker", "proxy": {"https": "${HTTPS_PROXY}",
                                                                            "no_proxy": "localhost,.corp"}}}]),
        "default_builder": st.sampled_from(["local", "remote", "nope"]),
    }
    d["environments"] = draw(st.dictionaries(names, fragment("environment"), min_size=1, max_size=4))
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        d[key] = draw(maybe(optional[key]))
    if draw(st.integers(0, 10)) == 0:
        d[draw(st.sampled_from(["pipeline", "environment", "outputs", "Version"]))] = draw(junk)
    order = draw(st.permutations(sorted(d)))
    return {k: d[k] for k in order}


# Valid projects: schema-valid, every reference resolves, no cycles; the free-text fields
# (env/label/build_arg values, run, entrypoint, cmd, installer args, descriptions) still get
# tricky strings that are legal there, so that compile succeeds and the output oracle runs.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
VALID_NAMES = ["base", "trainer", "parent", "settings", "runner", "server", "a", "b-c", "x_1"]
# Values of env/labels/build_args: mostly without control characters (any, tab included, is a
# located error), sometimes with a tab.
_line_text = tricky.map(lambda s: CONTROL.sub("", s))
line_values = st.one_of(_line_text, _line_text, _line_text, st.integers(), st.booleans(), st.floats(allow_nan=False),
                        st.none(), _line_text, _line_text, _line_text, _line_text, st.sampled_from(["a\tb", "\t"]))
no_nul = tricky.map(lambda s: s.replace("\x00", ""))


def _valid_command(s: str) -> str:
    """A legal command: no NUL, not blank, not starting with '-' (Unicode whitespace around it stays)."""
    s = s.replace("\x00", "")
    if not s.strip():
        return "true"
    return "echo " + s if s.lstrip().startswith("-") else s


valid_commands = commands.map(_valid_command)
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "description": tricky,
    "installer": st.sampled_from(["pip", "uv"]),
    "installer_args": small_lists(st.one_of(st.sampled_from(["--pre", "--no-deps", "--index-url=http://x/simple"]),
                                            installer_args.map(lambda s: CONTROL.sub("", s)))),
    "apt_packages": st.lists(st.sampled_from(["git", "libgomp1", "curl=7.88.1-10+deb12u5", "libc6:amd64", "g++"]),
                             unique=True, max_size=3),
    "requirements": st.lists(st.sampled_from(["pandas==2.2.2", "torch>=2,<3", "scikit-learn[extra]>=1.4",
                                              "requests ; python_version > '3'", "numpy<2"]), unique=True, max_size=3),
    "requirements_files": st.sampled_from([[], ["requirements.txt"]]),
    "env": st.dictionaries(st.sampled_from(["A", "PYTHONUNBUFFERED", "_X", "PATH", "LANG"]), line_values, max_size=4),
    "build_args": st.dictionaries(st.sampled_from(["A", "VERSION", "_X"]), line_values, max_size=3),
    "labels": st.dictionaries(st.sampled_from(["team", "org.opencontainers.image.title", "a/b", "x"]), line_values,
                              max_size=3),
    "user": st.sampled_from(["app", "root", "0", "1000", "app-user_1", "_x"]),
    "workdir": st.sampled_from(["/app", "/a/é", "/opt/x-1.0", "/", "/srv/app_2"]),
    "copy": small_lists(st.one_of(
        st.sampled_from(["src/", "src", "src/app.py", "conf/prod.yaml", "my file.txt", "é.txt", ".",
                         "./conf/prod.yaml", "src/../conf/prod.yaml"]),
        st.fixed_dictionaries({"from": st.sampled_from(["src/", "conf/prod.yaml", "my file.txt", "é.txt"]),
                               "to": st.sampled_from(["/app/conf.yaml", "rel/x.yaml", "/x y/", "dir/", "/é", "/opt/",
                                                      "a b", "/app/", "/app/x-1/"])}),
        st.fixed_dictionaries({"from": st.sampled_from(["src/", "conf/prod.yaml", "my file.txt", "é.txt"])}))),
    "run": small_lists(valid_commands),
    "entrypoint": small_lists(no_nul),
    "cmd": small_lists(no_nul),
    "checks": small_lists(valid_commands),
    "local_packages": st.lists(st.sampled_from([".", "libs/feature lib", "libs/é,x=1@2~+", "./libs/cfg/"]),
                               unique=True, max_size=3),
    "certificates": st.sampled_from([[], ["certs/ca.pem"], ["./certs/ca.pem", "certs/my ca.pem"], ["certs/é.pem"]]),
    "index_url": st.sampled_from(["https://pypi.example.com/simple", "http://10.0.0.1:8080/simple/",
                                  "https://m.example/s?a=1&b='x'&c=$(id)"]),
    "extra_index_urls": st.lists(st.sampled_from(["https://pypi.example.com/simple", "https://x.example/a;b",
                                                  "http://[::1]:8080/simple", "https://e.example/%7Eu/#frag"]),
                                 unique=True, max_size=3),
}
BASES = {"python": st.sampled_from(["3.11", 3.12, "3.10", 3.9]),
         "parent_image": st.sampled_from(["python:3.11-slim", "ubuntu:22.04", "nvidia/cuda:12.1.0-runtime-ubuntu22.04",
                                          "localhost:5000/ml/base:1"]),
         "dockerfile": st.sampled_from(["docker/base.Dockerfile", "docker/app.Dockerfile", "dockwright.yaml"])}
# The user each possible parent runs as, as a reader of the fixture knows it (None: not knowable at compile).
PARENT_USERS = {"python:3.11-slim": "root", "docker/base.Dockerfile": "root", "docker/app.Dockerfile": "app:app"}


@st.composite
def valid_fragment(draw: Any, kind: str, parents: list[str], integrations: list[str]) -> dict[str, Any]:
    keys = [k for k in VALID_FIELDS if kind != "integration" or k in INTEGRATION_KEYS]
    out: dict[str, Any] = {}
    if kind == "environment":
        if parents and draw(st.booleans()):
            out["extends"] = draw(st.sampled_from(parents))
        else:
            base = draw(st.sampled_from(sorted(BASES)))
            out[base] = draw(BASES[base])
            if base == "dockerfile" and draw(st.booleans()):
                out["context"] = draw(st.sampled_from([".", "docker"]))
    for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=7)):
        out[key] = draw(VALID_FIELDS[key])
    if kind != "integration" and integrations and draw(st.booleans()):
        out["integrations"] = draw(st.lists(st.sampled_from(integrations), unique=True, min_size=1))
    return out


@st.composite
def valid_projects(draw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"version": 1, "project": draw(st.sampled_from(["demo", "ml-2"]))}
    integ_names = draw(st.lists(st.sampled_from(VALID_NAMES), unique=True, max_size=2))
    d["integrations"] = {n: draw(valid_fragment("integration", [], [])) for n in integ_names}
    env_names = draw(st.lists(st.sampled_from(VALID_NAMES), unique=True, min_size=1, max_size=4))
    envs: dict[str, Any] = {}
    for i, name in enumerate(env_names):
        envs[name] = draw(valid_fragment("environment", env_names[:i], integ_names))
    d["environments"] = envs
    for role in ("runner", "server"):
        if draw(st.booleans()):
            t: dict[str, Any] = {"environment": draw(st.sampled_from(env_names))}
            if draw(st.booleans()):
                t["settings"] = draw(valid_fragment("settings", [], integ_names))
            d[role] = t
    pipes: dict[str, Any] = {}
    for pname in draw(st.lists(st.sampled_from(VALID_NAMES), unique=True, max_size=2)):
        steps: dict[str, Any] = {}
        step_names = sorted(draw(st.lists(st.sampled_from(VALID_NAMES), unique=True, min_size=1, max_size=4)))
        for i, sname in enumerate(step_names):
            st_: dict[str, Any] = {}
            if i and draw(st.booleans()):
                st_["after"] = draw(st.lists(st.sampled_from(step_names[:i]), unique=True, min_size=1))
            if draw(st.booleans()):
                st_["environment"] = draw(st.sampled_from(env_names))
            if draw(st.booleans()):
                st_["settings"] = draw(valid_fragment("settings", [], integ_names))
            steps[sname] = st_
        pipes[pname] = {"environment": draw(st.sampled_from(env_names)), "steps": steps}
    if pipes:
        d["pipelines"] = pipes
    if draw(st.booleans()):
        d["output"] = draw(st.sampled_from(["generated", "out/dir", "my out"]))
    if draw(st.booleans()):
        d["registry"] = draw(st.sampled_from(["localhost:5000/ml", "ghcr.io/org/team"]))
    if draw(st.booleans()):
        d["builders"] = {"local": {"type": "docker"}}
        if draw(st.booleans()):
            d["builders"]["local"]["proxy"] = {"http": "http://proxy.example:3128", "no_proxy": "localhost,.corp",
                                               "https": "http://${PROXY_USER}:${PROXY_PASSWORD}@proxy.example:3128"}
        d["default_builder"] = "local"
    order = draw(st.permutations(sorted(d)))
    return {k: d[k] for k in order}


project_dicts = st.one_of(wild_projects(), valid_projects())


def _own_values(compiled: Compiled, name: str, frag: Any) -> None:
    """An environment's own string values in env/labels/build_args win in its effective environment."""
    if not isinstance(frag, dict) or name not in compiled.plan.environments:
        return
    env = compiled.plan.environments[name]
    for section in ("env", "labels", "build_args"):
        given_map = frag.get(section)
        if not isinstance(given_map, dict):
            continue
        effective = getattr(env, section)
        for key, value in given_map.items():
            if value is None:
                assert key not in effective, f"{name}.{section}.{key}: null did not remove it"
            elif isinstance(value, str):
                assert key in effective and effective[key].value == value, \
                    f"{name}.{section}.{key}: wrote {value!r}, effective {effective.get(key)!r}"


@props(450)
@given(d=project_dicts, allow_unicode=st.booleans(), flow=st.sampled_from([None, False, True]))
def test_generated_projects(d: dict[str, Any], allow_unicode: bool, flow: bool | None) -> None:
    text = yaml.safe_dump(d, allow_unicode=allow_unicode, default_flow_style=flow, sort_keys=False, width=80)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assume(yaml.load(text, Loader=loader) == d)  # the generator's own sanity: YAML round-trips
    with project_dir(text, FIXTURE_FILES) as main:
        compiled = outcome(main)
        event("compiled" if compiled is not None else "ConfigError")
        if compiled is None:
            return
        check_output(compiled)
        if any(i.spec is not None and i.spec.local_packages for i in compiled.plan.images.values()):
            event("local packages")
        for name, frag in (d.get("environments") or {}).items():
            _own_values(compiled, name, frag)
        for pname, pipe in (d.get("pipelines") or {}).items():
            for sname, s in ((pipe or {}).get("steps") or {}).items():
                if isinstance(s, dict):
                    _own_values(compiled, f"{pname}.{sname}", s.get("settings"))
        for role in ("runner", "server"):
            t = d.get(role)
            if isinstance(t, dict):
                _own_values(compiled, f"{role}.settings", t.get("settings"))


# =================================================================================================
# 3. Mutations of a valid project


BASE_PROJECT = textwrap.dedent("""\
    version: 1
    project: churn
    registry: localhost:5000/ml
    integrations:
      sklearn:
        requirements: ["scikit-learn>=1.4,<2"]
        apt_packages: [libgomp1]
        env: {OMP_NUM_THREADS: "1"}
    environments:
      base:
        python: "3.11"
        installer: pip
        installer_args: [--no-deps]
        apt_packages: [git]
        requirements: ["pandas==2.2.2"]
        requirements_files: [requirements.txt]
        integrations: [sklearn]
        env: {PYTHONUNBUFFERED: "1", GREETING: 'say "hi" $(whoami) \\ done'}
        build_args: {VERSION: "1.0"}
        user: app
        workdir: /app
        copy: [src/, {from: conf/prod.yaml, to: /app/conf.yaml}, {from: my file.txt, to: data/}]
        run: ["echo ready", "printf 'a\\\\nb' > /tmp/x"]
        entrypoint: [python, -m, app]
        cmd: ["--port", "8080"]
        labels: {team: ml, org.opencontainers.image.title: "churn base"}
        checks: ["python -c 'import pandas'"]
      trainer:
        extends: base
        requirements: ["torch==2.3.0"]
        env: {STAGE: train}
        run: ["echo train"]
      custom:
        dockerfile: docker/base.Dockerfile
        context: .
        env: {KIND: custom}
    runner: {environment: base}
    server: {environment: custom, settings: {env: {ROLE: server}}}
    pipelines:
      training:
        environment: base
        steps:
          load: {}
          train: {after: [load], environment: trainer}
          evaluate:
            after: [train]
            settings: {requirements: ["matplotlib==3.9.0"], env: {STEP: evaluate}}
    builders:
      local: {type: docker}
    default_builder: local
""")


def test_base_project_compiles_and_reads_back() -> None:
    with project_dir(BASE_PROJECT, FIXTURE_FILES) as main:
        compiled = outcome(main)
        assert compiled is not None
        check_output(compiled)
        assert {"base", "trainer", "custom.parent", "custom"} <= set(compiled.plan.images)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _container(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _typo(draw: Any, word: str) -> str:
    word = str(word)
    i = draw(st.integers(0, max(len(word) - 1, 0)))
    op = draw(st.integers(0, 3))
    if op == 0 or len(word) < 2:
        return word[:i] + draw(st.sampled_from("abcxyz_-")) + word[i:]
    if op == 1:
        return word[:i] + word[i + 1:]
    if op == 2 and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word.upper() if word != word.upper() else word + "s"


@st.composite
def mutated_projects(draw: Any) -> str:
    data = yaml.safe_load(BASE_PROJECT)
    data_ops = draw(st.lists(st.sampled_from(["delete", "rename", "retype"]), max_size=3))
    for op in data_ops:
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        holder = _container(data, path)
        key = path[-1]
        if op == "delete":
            del holder[key]
        elif op == "rename" and isinstance(holder, dict):
            new = _typo(draw, key)
            holder[new] = holder.pop(key)
        else:
            holder[key] = draw(junk)
    text = BASE_PROJECT if not data_ops else yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()))
    lines = text.split("\n")
    for _ in range(draw(st.integers(0 if data_ops else 1, 4))):
        op = draw(st.sampled_from(["duplicate", "insert", "indent", "delete", "swap", "splice"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            lines = [""]
        if op == "duplicate":
            lines.insert(i + 1, lines[i])
        elif op == "insert":
            indent = draw(st.sampled_from(["", "  ", "    ", "      ", "\t"]))
            lines.insert(i, indent + draw(st.one_of(token_text, tricky)))
        elif op == "indent":
            stripped = lines[i].lstrip(" ")
            width = len(lines[i]) - len(stripped)
            lines[i] = draw(st.sampled_from([" " * max(width - 2, 0), " " * (width + 2), " " * (width + 1),
                                             "\t" + lines[i], " " * width + "\t"])) + stripped
        elif op == "delete":
            del lines[i]
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        else:
            line = lines[i]
            j = draw(st.integers(0, len(line)))
            lines[i] = line[:j] + draw(st.sampled_from(YAML_TOKENS)) + line[j + draw(st.integers(0, 2)):]
    return "\n".join(lines)


@props(450)
@given(text=mutated_projects())
def test_mutated_projects_are_compiled_or_located(text: str) -> None:
    with project_dir(text, FIXTURE_FILES) as main:
        compiled = outcome(main)
        if compiled is not None:
            check_output(compiled)


# =================================================================================================
# 4. Injection: crafted strings in every field that reaches a Dockerfile


PAYLOADS = {
    "nl-from": "x\nFROM evil",
    "crlf-from": "x\r\nFROM evil",
    "cr-from": "x\rFROM evil",
    "backslash-eol": "x \\",
    "backslash-nl": "x \\\nFROM evil",
    "quote": 'a"b',
    "lone-quote": '"',
    "single-quote": "it's",
    "subst": "$(rm -rf /)",
    "backtick": "`rm -rf /`",
    "var": "${PATH}",
    "heredoc": "cat <<EOF\nFROM evil\nEOF",
    "heredoc-marker": "<<EOF",
    "escape-directive": "# escape=`",
    "json": '["/bin/sh", "-c", "evil"]',
    "nul": "a\x00b",
    "u2028": "a\u2028FROM evil",
    "nel": "a\x85FROM evil",
    "nbsp": "echo hi\u00a0",
    "lead-nbsp": "\u00a0echo hi",
    "ideographic-space": "\u3000echo hi\u3000",
    "trailing-nel": "echo hi\x85",
    "trailing-u2029": "echo hi\u2029",
    "non-ascii": "é日本🙂",
    "tab": "a\tb",
    "flag-network": "--network=host echo hi",
    "flag-mount": "--mount=type=bind,source=/,target=/host cat /host/etc/shadow",
    "flag-from": "--from=alpine",
    "dash": "-x",
    "space-dash": " \t-x",
    "spaces": "a b",
    "empty": "",
}

# Where each field goes; the compiled plan must then hold the payload itself.
BASE_ENV = {"python": "3.11", "requirements": ["pandas==2.2.2"], "user": "app", "workdir": "/app"}


def _place(field: str, payload: str) -> tuple[dict[str, Any], dict[str, str]]:
    env: dict[str, Any] = dict(BASE_ENV)
    files = dict(FIXTURE_FILES)
    if field == "env":
        env["env"] = {"V": payload}
    elif field == "label":
        env["labels"] = {"v": payload}
    elif field == "build_arg":
        env["build_args"] = {"V": payload}
        env["run"] = ["echo uses-args"]
    elif field in ("run", "entrypoint", "cmd", "installer_args", "apt_packages", "requirements", "checks"):
        env[field] = [payload] if field != "requirements" else ["pandas==2.2.2", payload]
    elif field == "copy_dest":
        env["copy"] = [{"from": "conf/prod.yaml", "to": payload}]
    elif field == "copy_src":
        env["copy"] = [payload]
        if payload and "\x00" not in payload and "/" not in payload and payload not in (".", ".."):
            files[payload] = "x\n"
    elif field in ("user", "workdir"):
        env[field] = payload
    elif field == "index_url":
        env["index_url"] = f"https://h/{payload}"
    elif field == "certificate":
        env["certificates"] = [payload]
        if payload and "\x00" not in payload and "/" not in payload and payload not in (".", ".."):
            files[payload] = FIXTURE_FILES["certs/ca.pem"]
    elif field == "step_env":
        pass
    else:
        raise AssertionError(field)
    project: dict[str, Any] = {"version": 1, "project": "demo", "environments": {"base": env},
                               "runner": {"environment": "base"}}
    if field == "step_env":
        project["pipelines"] = {"p": {"environment": "base",
                                      "steps": {"s": {"settings": {"env": {"V": payload}}}}}}
    return project, files


def _holds(compiled: Compiled, field: str, payload: str) -> None:
    """The plan holds the payload itself (not a mangled copy) where it was written."""
    name = "p.s" if field == "step_env" else "base"
    image = compiled.plan.images[compiled.plan.env_image[name]]
    spec = image.spec
    assert spec is not None
    if field in ("env", "step_env"):
        assert ("V", payload) in spec.env
    elif field == "label":
        assert ("v", payload) in spec.labels
    elif field == "build_arg":
        assert ("V", payload) in spec.build_args
    elif field == "run":
        assert payload in spec.run
    elif field in ("entrypoint", "cmd"):
        assert getattr(spec, field) == (payload,)
    elif field == "installer_args":
        assert spec.installer_args == (payload,)
    elif field == "index_url":
        assert spec.index_url == f"https://h/{payload}"
    elif field == "certificate":
        assert [src for src, _ in spec.certificates] == [posixpath.normpath(payload)]
    elif field in ("user", "workdir"):
        assert getattr(spec, field) == payload
    elif field == "checks":
        assert payload in image.checks


INJECTION_FIELDS = ["env", "label", "build_arg", "step_env", "run", "entrypoint", "cmd", "installer_args",
                    "copy_dest", "copy_src", "requirements", "apt_packages", "user", "workdir", "checks", "index_url",
                    "certificate"]

_CONTROL_VALUE = r"value of 'V' in '(?:settings\.)?(?:env|labels|build_args)' .* contains a newline or control character"
_INSTALLER_ARG = r"installer argument '.*' contains a newline or control character"
_DASH_COMMAND = r"command '.*' starts with '-'"
# Decided outcomes: these (field, payload) pairs must be a located ConfigError with a matching
# message (an ENV/LABEL/ARG value is one line; installer args are one line each; a RUN command
# or a COPY path never reads as a flag) ...
EXPECTED_ERRORS: dict[tuple[str, str], str] = {
    **{(field, "tab"): _CONTROL_VALUE.replace("'V'", "'[Vv]'") for field in ("env", "label", "build_arg", "step_env")},
    **{("installer_args", key): _INSTALLER_ARG
       for key in ("nl-from", "crlf-from", "cr-from", "backslash-nl", "heredoc", "tab", "nul")},
    **{(field, key): _DASH_COMMAND for field in ("run", "checks")
       for key in ("flag-network", "flag-mount", "flag-from", "dash", "space-dash")},
    ("copy_src", "flag-from"): r"copy source '--from=alpine' has a part starting with '-'",
    ("copy_src", "dash"): r"copy source '-x' has a part starting with '-'",
    ("copy_dest", "flag-from"): r"invalid copy destination '--from=alpine'",
    ("copy_dest", "dash"): r"invalid copy destination '-x'",
    **{("index_url", key): r"invalid index URL 'https://h/" for key in ("nl-from", "backtick", "spaces", "non-ascii")},
    ("certificate", "dash"): r"certificate '-x' has a part starting with '-'",
}
# ... and these must compile, the RUN command kept exactly (Unicode whitespace at either end included).
MUST_COMPILE = {("run", key) for key in ("nbsp", "lead-nbsp", "ideographic-space", "trailing-nel", "trailing-u2029")}


def _injection_params() -> list[Any]:
    return [pytest.param(field, key, id=f"{field}/{key}") for field in INJECTION_FIELDS for key in PAYLOADS]


@pytest.mark.parametrize("field,key", _injection_params())
def test_injection(field: str, key: str) -> None:
    payload = PAYLOADS[key]
    project, files = _place(field, payload)
    text = yaml.safe_dump(project, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(text) != project:  # PyYAML writes a raw NEL/U+2028 that YAML then reads as a break
        text = yaml.safe_dump(project, sort_keys=False, allow_unicode=False)
    assert yaml.safe_load(text) == project
    with project_dir(text, files) as main:
        try:
            compiled = compile_project(main)
        except ConfigError as exc:
            check_config_error(exc, main.parent)
            assert (field, key) not in MUST_COMPILE, exc.render()
            if (field, key) in EXPECTED_ERRORS:
                pattern = EXPECTED_ERRORS[field, key]
                assert any(re.match(pattern, d.message) for d in exc.diagnostics), exc.render()
            return
        assert (field, key) not in EXPECTED_ERRORS, f"compiled, expected an error {EXPECTED_ERRORS[field, key]!r}"
        check_output(compiled)
        _holds(compiled, field, payload)
        for path, content in compiled.files.items():
            if path.endswith("Dockerfile"):
                froms = [i for i in dockerfile.parse_string(content) if i.cmd == "FROM"]
                assert len(froms) == 1 and "evil" not in froms[0].original, content


# =================================================================================================
# 5. Regression tests: minimal reproducers of bugs the properties above once found


def _compile_text(text: str, files: dict[str, str] | None = None) -> Compiled | None:
    with project_dir(text, files) as main:
        try:
            return compile_project(main)
        except ConfigError as exc:
            check_config_error(exc, main.parent)
            return None


def _errors(text: str, files: dict[str, str] | None = None) -> list[Diagnostic]:
    """The located diagnostics of a project that must not compile."""
    with project_dir(text, files) as main:
        with pytest.raises(ConfigError) as info:
            compile_project(main)
        check_config_error(info.value, main.parent)
    return list(info.value.diagnostics)


@pytest.mark.parametrize("line", ["project: 2001-13-45", "project: 0000-01-01", "project: !!int abc",
                                  "project: !!float abc", "project: !!timestamp abc", "project: !!bool abc",
                                  "project: !!bool", "project: !!int", "project: !!float", "project: !!int +"])
def test_regression_bad_scalars_are_located(line: str) -> None:
    """A scalar YAML cannot construct (impossible date, bad !!int/!!float/!!timestamp) is a located
    error at the value, not a ValueError/AttributeError traceback from the YAML constructor."""
    (d,) = [d for d in _errors(f"version: 1\n{line}\n") if d.message.startswith("cannot read value")]
    assert d.location is not None and (d.location.line, d.location.col) == (2, 10), d.format()


@pytest.mark.parametrize("text", ["version: 1\n", "project: demo\n"])
def test_regression_missing_top_level_key_is_located(text: str) -> None:
    """A missing top-level key ('version', 'project') is reported at the top of the main file
    (check_config_error requires a location for every diagnostic)."""
    (d,) = _errors(text)
    assert d.message.startswith("missing required key") and d.location is not None, d.format()
    assert (d.location.line, d.location.col) == (1, 1), d.format()


@pytest.mark.parametrize("snippet", ["project: null", "registry: null", "output: null",
                                     "environments: {base: {parent_image: null}}",
                                     "environments: {base: {python: '3.11', user: null}}",
                                     "environments: {base: {python: '3.11', run: [null]}}",
                                     "environments: {base: {python: '3.11', copy: [null]}}",
                                     "environments: {base: {python: '3.11', apt_packages: [null]}}"])
def test_regression_null_values_are_located(snippet: str) -> None:
    """A null where a non-nullable value belongs is a located error, not a TypeError/AttributeError
    from a schema check_with function run on None."""
    text = "version: 1\n" + ("" if snippet.startswith("project") else "project: demo\n") + snippet + "\n"
    assert _errors(text)


def test_regression_copy_entry_unknown_key_is_located_at_the_key() -> None:
    """An unknown key in a copy entry is located at that key, not at the entry's first line."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        runner: {environment: base}
        environments:
          base:
            python: "3.11"
            copy:
              - from: conf/prod.yaml
                mode: "0644"
    """)
    (d,) = _errors(text, FIXTURE_FILES)
    assert d.message.startswith("unknown key 'mode' in a copy entry"), d.format()
    assert d.location is not None and (d.location.line, d.location.col) == (9, 9), d.format()


def test_regression_copy_entry_without_to_is_valid() -> None:
    """`{from: x}` without `to` means the same as the string form `x`."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        runner: {environment: base}
        environments:
          base: {python: "3.11", copy: [{from: conf/prod.yaml}]}
          same: {python: "3.11", copy: [conf/prod.yaml]}
        server: {environment: same}
    """)
    compiled = _compile_text(text, FIXTURE_FILES)
    assert compiled is not None
    check_output(compiled)
    specs = [compiled.plan.images[compiled.plan.env_image[name]].spec for name in ("base", "same")]
    assert specs[0] is not None and specs[1] is not None and specs[0].copy == specs[1].copy


# Lines of YAML (double-quoted escapes: "\n" and "\t" are a newline and a tab), and the error each must give.
@pytest.mark.parametrize("line,message", [
    ('run: ["--network=host echo hi"]', "command '--network=host echo hi' starts with '-'"),
    ('run: ["  -x"]', "command '  -x' starts with '-'"),
    ('checks: ["--mount=type=cache,target=/x true"]', "command '--mount=type=cache,target=/x true' starts with '-'"),
    ('installer_args: ["--pre\\nFROM evil"]', "installer argument '--pre\\nFROM evil' contains a newline"),
    ('installer_args: ["a\\tb"]', "installer argument 'a\\tb' contains a newline or control character"),
    ('env: {A: "a\\tb"}', "value of 'A' in 'env' of environment 'base' contains a newline or control character"),
    ('labels: {a: "\\t"}', "value of 'a' in 'labels' of environment 'base' contains a newline or control character"),
    ('build_args: {A: "x\\ty"}', "value of 'A' in 'build_args' of environment 'base' contains a newline"),
    ("copy: [--from=alpine]", "copy source '--from=alpine' has a part starting with '-'"),
    ("copy: [src/-x]", "copy source 'src/-x' has a part starting with '-'"),
    ("copy: [{from: conf/prod.yaml, to: /app/-x}]", "invalid copy destination '/app/-x'"),
])
def test_regression_values_that_would_escape_are_located_errors(line: str, message: str) -> None:
    """A RUN command or COPY path that would read as a flag, a multi-line or tabbed installer arg,
    and a tab in an ENV/LABEL/ARG value are located schema errors, never rendered (nor a crash)."""
    files = {**FIXTURE_FILES, "--from=alpine": "x\n", "src/-x": "x\n"}
    text = ('version: 1\nproject: demo\nrunner: {environment: base}\nenvironments:\n  base:\n    python: "3.11"\n'
            f"    requirements: [pandas==2.2.2]\n    {line}\n")
    (d,) = _errors(text, files)
    assert d.message.startswith(message), d.format()
    assert d.location is not None and d.location.line == 8, d.format()


def test_regression_recursive_merge_is_located() -> None:
    """A mapping that merges itself (`&a {<<: *a}`) is a located error, not a RecursionError."""
    (d,) = [d for d in _errors("version: 1\nproject: demo\na: &a {<<: *a}\n") if "recursive" in d.message]
    assert d.location is not None and d.location.line == 3, d.format()


def test_regression_step_image_collides_with_custom_parent() -> None:
    """Custom parent '<env>.parent' and step image '<pipeline>.<step>' = 'base.parent' no longer clash
    (was a NetworkXUnfeasible traceback): the custom parent becomes 'base.parent-2'."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        environments:
          base: {dockerfile: docker/base.Dockerfile}
        pipelines:
          base:
            environment: base
            steps:
              parent: {settings: {env: {A: "1"}}}
    """)
    compiled = _compile_text(text, FIXTURE_FILES)
    assert compiled is not None
    check_output(compiled)
    images = compiled.plan.images
    assert not images["base.parent-2"].generated
    assert images[compiled.plan.env_image["base"]].parent == "base.parent-2"
    assert compiled.plan.env_image["base.parent"] == "base.parent" and images["base.parent"].generated


def test_regression_step_settings_collides_with_runner_settings() -> None:
    """Step 'settings' of pipeline 'runner' and the runner's own settings would both be environment
    'runner.settings' (one silently replaced the other): now exactly one located error."""
    text = textwrap.dedent("""\
        version: 1
        project: demo
        environments:
          base: {python: "3.11"}
        runner: {environment: base, settings: {env: {WHO: runner}}}
        pipelines:
          runner:
            environment: base
            steps:
              settings: {settings: {env: {WHO: step}}}
    """)
    (d,) = _errors(text)
    assert d.message == ("the runner's settings image 'runner.settings' has the same name as step 'settings' "
                         "of pipeline 'runner'")
    assert d.hint == "rename that step or pipeline"
    assert d.location is not None and (d.location.line, d.location.col) == (5, 29), d.format()
    assert d.location.source_line[d.location.col - 1:].startswith("settings:")


@pytest.mark.parametrize("brk", ["\r", "\r\n", "\x85", "\u2028", "\u2029"])
def test_regression_exotic_line_breaks_locate_the_key(brk: str) -> None:
    """After a raw CR, NEL, U+2028 or U+2029 in the file, the line shown is the one libyaml counts."""
    text = f'version: 1\nproject: demo\ndescription: "a{brk}b"\nbogus: 1\n'
    (d,) = [d for d in _errors(text) if "bogus" in d.message]
    assert d.location is not None and d.location.source_line.startswith("bogus"), d.format()
    assert (d.location.line, d.location.col) == (5, 1), d.format()


def test_regression_very_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    """30,000 nested flow collections (libyaml's composer overflowed the C stack: exit 139) are a
    ConfigError: exit 1 from the CLI, a located diagnostic, no traceback."""
    n = 30000
    (tmp_path / PROJECT_FILE).write_text("version: 1\nproject: x\nx: " + "[" * n + "]" * n + "\n")
    proc = subprocess.run([sys.executable, "-m", "compiler", "validate", "-f", str(tmp_path / PROJECT_FILE)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-500:]!r}"
    assert "Traceback" not in proc.stderr and f"{PROJECT_FILE}:1:1: error" in proc.stderr, proc.stderr[-500:]
