"""Hypothesis strategies for dockwright projects: YAML-ish text, wild project dicts (any key, any value, mostly
plausible) and valid ones (schema-valid, references resolve), each environment key by its row in compiler/fields.py."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st


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

WILD_VALUES: dict[str, st.SearchStrategy[Any]] = {
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
    "heavy_packages": small_lists(st.sampled_from(["torch", "NumPy", "scikit_learn", "x y", "-x", "a\nb", "é"])),
    "cache_mounts": st.sampled_from([True, False, None, "yes", 1, []]),
    "secrets": st.dictionaries(st.sampled_from(["netrc", "token", "a,b", "-x", "é", "x y", ".x", "id=1"]),
                               st.one_of(st.none(), st.sampled_from([
                                   {"env": "NETRC_TEXT"}, {"file": "~/.netrc"}, {"file": "/a,b"}, {"env": "1X"},
                                   {"env": "A", "file": "b"}, {}, {"src": "x"}, {"file": 1}, {"file": "a\nb"},
                                   "text"])), max_size=3),
}
ENV_ONLY = {"extends", "parent_image", "python", "dockerfile", "context", "installer", "installer_args", "user",
            "workdir", "copy", "entrypoint", "cmd", "apt_packages", "requirements_files", "integrations"}
INTEGRATION_KEYS = ["description", "apt_packages", "requirements", "requirements_files", "env", "build_args",
                    "labels", "run", "checks", "certificates", "index_url", "extra_index_urls"]
ENVIRONMENT_KEYS = sorted(WILD_VALUES)
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
        out[key] = draw(maybe(WILD_VALUES[key]) if draw(st.integers(0, 5)) == 0 else WILD_VALUES[key])
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
VALID_VALUES: dict[str, st.SearchStrategy[Any]] = {
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
    "heavy_packages": st.lists(st.sampled_from(["torch", "NumPy", "scikit_learn", "pandas"]), unique=True, max_size=2),
    "cache_mounts": st.booleans(),
    "secrets": st.dictionaries(st.sampled_from(["netrc", "token", "my.id-2", "_x"]),
                               st.sampled_from([{"env": "NETRC_TEXT"}, {"file": "~/.netrc"}, {"file": "/run/s p/x=1"},
                                                {"file": "rel/é.txt"}]), max_size=3),
}
BASES = {"python": st.sampled_from(["3.11", 3.12, "3.10", 3.9]),
         "parent_image": st.sampled_from(["python:3.11-slim", "ubuntu:22.04", "nvidia/cuda:12.1.0-runtime-ubuntu22.04",
                                          "localhost:5000/ml/base:1"]),
         "dockerfile": st.sampled_from(["docker/base.Dockerfile", "docker/app.Dockerfile", "dockwright.yaml"])}


@st.composite
def valid_fragment(draw: Any, kind: str, parents: list[str], integrations: list[str]) -> dict[str, Any]:
    keys = [k for k in VALID_VALUES if kind != "integration" or k in INTEGRATION_KEYS]
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
        out[key] = draw(VALID_VALUES[key])
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
