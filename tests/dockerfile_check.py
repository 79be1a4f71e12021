"""The one model of what a generated Dockerfile must read back as: the instructions its ImageSpec implies,
each read by BuildKit's own parser (pip package `dockerfile`) with every value exactly as the project holds it;
requirements files as pip's own parser reads them; and the user every RUN runs as."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import dockerfile

from compiler.driver import Compiled
from compiler.plan import CA_BUNDLE, HEAVY_REQUIREMENTS_IN_IMAGE, LOCAL_IN_IMAGE, REQUIREMENTS_IN_IMAGE, VENV, ImageSpec
from helpers import tool

# hadolint rules we do not follow, and why (docs/language.md, "Linting the output", repeats this list):
#   DL3008 apt version pins: pins are the user's choice (`pkg=version` in apt_packages); pinning distro
#          versions by default breaks every build when the mirror moves on.
#   DL3059 consecutive RUNs: each `run:` entry is its own RUN on purpose (one entry, one cached layer,
#          exactly as written); users who want one layer write one entry joined with `&&`.
#   DL3066 non-numeric USER: dockwright creates the named user in the image itself, so it resolves.
HADOLINT_IGNORED = ("DL3008", "DL3059", "DL3066")


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


def _words(ins: Any, flags: tuple[str, ...] = ()) -> list[str]:
    assert ins.flags == flags and not ins.json and len(ins.value) == 1, (ins.original, flags)
    return shlex.split(ins.value[0])


def apt_mounts(spec: ImageSpec) -> tuple[str, ...]:
    """The apt RUN's flags: the cache of downloaded packages (cache_mounts)."""
    return ("--mount=type=cache,target=/var/cache/apt,sharing=locked",) if spec.cache_mounts else ()


def install_mounts(spec: ImageSpec) -> tuple[str, ...]:
    """An install RUN's flags: the installer's cache (cache_mounts), then each secret, by id."""
    cache = (f"--mount=type=cache,target=/root/.cache/{spec.installer},sharing=locked",) if spec.cache_mounts else ()
    return cache + tuple(f"--mount=type=secret,id={secret_id},required=true" for secret_id, _ in spec.secrets)


def _install_words(spec: ImageSpec, ins: Any) -> list[str]:
    """An install RUN's words, after its flags; it starts by pointing NETRC at the secret named netrc, if any."""
    words = _words(ins, install_mounts(spec))
    netrc = any(secret_id == "netrc" for secret_id, _ in spec.secrets)
    assert (words[:3] == ["export", "NETRC=/run/secrets/netrc", "&&"]) == netrc, ins.original
    assert ("--no-cache-dir" in words or "--no-cache" in words) != bool(spec.cache_mounts) or \
        spec.installer == "uv", ins.original  # uv's RUN installs uv itself with pip --no-cache-dir
    return words


def _tool_run(contains: list[str], ins: Any, flags: tuple[str, ...] = ()) -> None:
    words = _words(ins, flags)
    for word in contains:
        assert word in words, f"{word!r} is not a word of {ins.original!r}"


def _local_install(spec: ImageSpec, ins: Any) -> None:
    """The local packages' RUN: the index flags, installer_args, then exactly the staged packages (each one
    shell word), then the staging directory removed."""
    words = _install_words(spec, ins)
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
    words = _install_words(spec, ins)
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
        out.append(("RUN", partial(_tool_run, list(spec.apt), flags=apt_mounts(spec))))
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


def check_users(compiled: Compiled, parent_users: Mapping[str, str]) -> None:
    """Every RUN runs as root, whatever user the parent image ends as; the image ends as its environment's
    user, else as its parent's (parent_users: the user each external image or custom parent Dockerfile runs as,
    as a reader of the project knows it). Where compile cannot know the parent's user and switched to root,
    the manifest says so (build checks the parent)."""
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
            start = _external_user(plan.environments[image.environments[0]].base, parent_users)
        current = _runs_as_root(name, start, compiled.files[f"images/{name}/Dockerfile"])
        flagged = manifest["images"][name].get("needs_root_parent", False)
        if image.user is not None:
            assert current == image.user, f"{name} ends as {current}, not its user {image.user}"
        elif start is not None:
            assert current == start, f"{name} ends as {current}, not as its parent ({start})"
        else:
            assert flagged == (current is not None), f"{name}: ends as {current}, needs_root_parent {flagged}"
        assert not flagged or (start is None and current == "root" and image.user is None), name
        ends[name] = current


def _external_user(base: Any, parent_users: Mapping[str, str]) -> str | None:
    """The user an image from outside the project (or a custom parent Dockerfile) runs as, when known."""
    assert base is not None
    if base.value.image and base.value.image.startswith("python:"):
        return "root"
    return parent_users.get(base.value.dockerfile or base.value.image or "")


def _runs_as_root(name: str, start: str | None, text: str) -> str | None:
    """Every RUN of the Dockerfile runs as root; the user it ends as."""
    current = start
    for ins in dockerfile.parse_string(text):
        if ins.cmd == "USER":
            current = ins.value[0]
        elif ins.cmd == "RUN":
            assert _root(current), f"{name}: {ins.original!r} runs as {current or 'an unknown user'}"
    return current


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


def check_output(compiled: Compiled, parent_users: Mapping[str, str] | None = None) -> None:
    """What compiles reads back: BuildKit reads exactly the spec, no more, no less; pip reads exactly its
    requirements; every RUN runs as root (check_users); the spec's values are the effective environment's."""
    out = compiled.project.output.rstrip("/")
    json.loads(compiled.files["manifest.json"])
    check_users(compiled, parent_users or {})
    for name, image in sorted(compiled.plan.images.items()):
        path = f"images/{name}/Dockerfile"
        if not image.generated:
            assert path not in compiled.files
            continue
        spec = image.spec
        assert spec is not None
        check_instructions(compiled.files[path], spec, f"{out}/images/{name}/requirements.txt", path)
        _check_requirements_files(compiled, name, spec)
        for env_name in image.environments:
            _check_values(compiled.plan.environments[env_name], spec, made_for=env_name == name)


def _check_requirements_files(compiled: Compiled, name: str, spec: ImageSpec) -> None:
    """requirements.txt (and requirements-heavy.txt) hold exactly the spec's requirements, one per line."""
    for req_path, reqs in ((f"images/{name}/requirements.txt", spec.requirements),
                           (f"images/{name}/requirements-heavy.txt", spec.heavy)):
        if reqs:
            lines = [ln for ln in compiled.files[req_path].split("\n") if ln and not ln.startswith("#")]
            assert lines == list(reqs), f"{req_path}: {lines!r} != {reqs!r}"
            assert pip_reads(compiled.files[req_path]) == list(reqs), req_path
        else:
            assert req_path not in compiled.files


def _check_values(env: Any, spec: ImageSpec, *, made_for: bool) -> None:
    """The spec's values are the effective environment's (made_for: the environment the image was made for)."""
    env_name = env.name
    for section in ("env", "labels", "build_args"):
        effective = {k: v.value for k, v in getattr(env, section).items()}
        pairs = dict(getattr(spec, section))
        # An environment that only adds build_args reuses its parent's image (ARGs matter only to
        # RUN), so build_args are exact only for the environment the image was made for.
        if section == "build_args" and not made_for:
            continue
        for k, v in pairs.items():
            assert effective.get(k) == v, f"{env_name}.{section}.{k}: spec {v!r}, effective {effective.get(k)!r}"
        if not spec.layered:
            assert pairs == effective, f"{env_name}.{section}: spec {pairs!r} != effective {effective!r}"
    _check_lists(env, spec, made_for=made_for)


def _check_lists(env: Any, spec: ImageSpec, *, made_for: bool) -> None:
    if not spec.layered:
        assert list(spec.run) == [r.value for r in env.run]
        assert [src for src, _ in spec.certificates] == sorted(env.certificates)
        assert [dst for _, dst in spec.local_packages] == [
            f"{LOCAL_IN_IMAGE}/" + ("" if p.value == "." else f"{p.value}/") for p in env.local_packages]
    if spec.requirements:
        assert spec.index_url == (env.index_url.value if env.index_url else None) or not made_for
        assert spec.extra_index_urls == tuple(u.value for u in env.extra_index_urls) or not made_for


def check_dockerfile(path: Path, spec: ImageSpec, requirements_src: str) -> None:
    """The Dockerfile at path holds exactly the instructions spec implies, each reading back as intended."""
    check_instructions(path.read_text(encoding="utf-8"), spec, requirements_src, str(path))


def check_instructions(text: str, spec: ImageSpec, requirements_src: str, where: str) -> None:
    parsed = dockerfile.parse_string(text)
    expected = expected_instructions(spec, requirements_src)
    got_cmds = [ins.cmd for ins in parsed]
    want_cmds = [cmd for cmd, _ in expected]
    assert got_cmds == want_cmds, f"{where}: instructions {got_cmds} != {want_cmds}\n{text}"
    for ins, (_, check) in zip(parsed, expected):
        assert ins.heredocs == (), f"{where}: heredoc in {ins.original!r}"
        check(ins)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    args = [tool("hadolint"), "--no-color"]
    for rule in HADOLINT_IGNORED:
        args += ["--ignore", rule]
    return subprocess.run([*args, str(path)], capture_output=True, text=True)


def spec_images(compiled: Any) -> list[tuple[str, ImageSpec, str]]:
    out = compiled.project.output.rstrip("/")
    return [(name, img.spec, f"{out}/images/{name}/requirements.txt")
            for name, img in sorted(compiled.plan.images.items()) if img.spec is not None]
