"""`dockwright init`: the exact file it writes from what a project has, and that the file is valid (the command
runs in-process: helpers.invoke)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import init, schema
from compiler.driver import compile_project
from helpers import invoke

FOOTER = """    workdir: /app

runner: {environment: base}

# pipelines:
#   training:
#     environment: base
#     steps:
#       load: {}
#       train: {after: [load]}
"""


DOT_NOTE = ("note: local_packages: [\".\"] copies the whole project into base's image, so a change to any file "
            "(generated/ too) rebuilds it and every image on it: a .dockerignore that leaves out what building the "
            "package does not need (.git, data, notebooks) keeps that small\n")

def _project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _init(root: Path, *args: str) -> tuple[int, str, str]:
    result = invoke("init", *args, cwd=root)
    return result.returncode, result.stdout, result.stderr


def test_requirements_txt_and_pep621(tmp_path: Path) -> None:
    root = _project(tmp_path / "Churn Model", {
        "requirements.txt": "pandas==2.2.2\nnumpy>=1.26  # arrays\n",
        "requirements-dev.txt": "pytest\n",
        "pyproject.toml": '[project]\nname = "Churn_Model"\nrequires-python = ">=3.10,<3.12"\n'
                          'dependencies = ["requests>=2", "pydantic[email]>=2 ; python_version >= \'3.10\'"]\n',
    })
    code, out, err = _init(root)
    assert (code, out) == (0, "wrote dockwright.yaml from pyproject.toml, requirements.txt\n"
                              "next: review it, then run 'dockwright compile'\n")
    assert err == ("note: requirements-dev.txt is not used: add it to an environment that needs it, e.g. one "
                   "that extends base (requirements_files: [requirements-dev.txt])\n")
    assert (root / "dockwright.yaml").read_text() == (
        "# A starting dockwright.yaml, written by `dockwright init` from pyproject.toml, requirements.txt.\n"
        "# Check it with `dockwright validate`, then `dockwright compile` writes the Dockerfiles.\n"
        "version: 1\n"
        "project: churn-model\n"
        "\n"
        "environments:\n"
        "  base:\n"
        '    python: "3.11"  # from pyproject.toml requires-python >=3.10,<3.12\n'
        '    requirements_files: ["requirements.txt"]\n'
        "    requirements:\n"
        '      - "requests>=2"\n'
        '      - "pydantic[email]>=2 ; python_version >= \'3.10\'"\n' + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0
    assert invoke("compile", cwd=root).returncode == 0
    assert sorted(p.name for p in root.iterdir()) == [
        "dockwright.yaml", "generated", "pyproject.toml", "requirements-dev.txt", "requirements.txt"]


def test_poetry_dependencies_become_pep508(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": """
[tool.poetry]
name = "featurelib"
[tool.poetry.dependencies]
python = "~3.11"
numpy = "^1.26.4"
scipy = "~1.13"
attrs = "23.2.0"
rich = {version = "^13", extras = ["jupyter"], markers = "sys_platform == 'linux'"}
mylib = {path = "../mylib"}
anything = "*"
"""})
    code, _, err = _init(root)
    assert code == 0
    assert err == ("note: pyproject.toml: dependency 'mylib' comes from a path, git or URL; add it by hand "
                   "(local_packages: for a directory in the project)\n")
    text = (root / "dockwright.yaml").read_text()
    assert text.split("  base:\n")[1] == (
        '    python: "3.11"  # from pyproject.toml requires-python ~3.11\n'
        "    requirements:\n"
        '      - "anything"\n'
        '      - "attrs==23.2.0"\n'
        '      - "numpy>=1.26.4,<2"\n'
        '      - "rich[jupyter]>=13,<14 ; sys_platform == \'linux\'"\n'
        '      - "scipy>=1.13,<1.14"\n' + FOOTER)
    assert "project: featurelib\n" in text


def test_dockerfile_is_the_parent_and_flags_win(tmp_path: Path) -> None:
    root = _project(tmp_path / "svc", {"Dockerfile": "FROM python:3.11-slim\n", ".python-version": "3.10.4\n"})
    code, out, _ = _init(root, "--project", "Billing API", "--python", "3.12")
    assert code == 0 and out.startswith("wrote dockwright.yaml from Dockerfile\n")
    text = (root / "dockwright.yaml").read_text()
    assert "project: billing-api\n" in text
    assert '    dockerfile: "Dockerfile"          # your Dockerfile, built first as the parent\n' in text
    assert '    python: "3.12"  # the Python version your Dockerfile\'s image has\n' in text
    assert invoke("compile", cwd=root).returncode == 0


@pytest.mark.parametrize(("files", "line"), [
    ({"Dockerfile": "FROM python:3.11-slim AS build\nRUN make\nFROM --platform=linux/amd64 python:3.10.4-slim\n",
      ".python-version": "3.12\n"}, '    python: "3.10"  # from its FROM python:3.10.4-slim'),
    ({"Dockerfile": "ARG BASE=python:3.10-slim\nFROM $BASE\n", ".python-version": "3.12\n"},
     '    python: "3.10"  # from its FROM python:3.10-slim'),
    ({"Dockerfile": "ARG PY=3.11\nFROM python:${PY}-slim\n"}, '    python: "3.11"  # from its FROM python:3.11-slim'),
    ({"Dockerfile": "ARG PY=3.11\nARG PY=\"3.10\"\nFROM python:${PY}-slim\n", ".python-version": "3.12\n"},
     '    python: "3.12"  # from .python-version: check that your Dockerfile\'s image has this Python'),
    ({"Dockerfile": "ARG BASE\nFROM $BASE\n", ".python-version": "3.12\n"},
     '    python: "3.12"  # from .python-version: check that your Dockerfile\'s image has this Python'),
    ({"Dockerfile": "FROM python:3.11-slim AS a\nARG PY=3.10\nFROM python:${PY}-slim\n", ".python-version": "3.12\n"},
     '    python: "3.12"  # from .python-version: check that your Dockerfile\'s image has this Python'),
    ({"Dockerfile": "FROM debian:12\n"},
     '    # python: "3.12"  # the Python version your Dockerfile\'s image has: `dockwright lock` needs it'),
])
def test_beside_a_dockerfile_python_states_its_images_version(tmp_path: Path, files: dict[str, str],
                                                              line: str) -> None:
    """`dockwright lock` needs the Python version of a custom parent: init writes what it can know, says where
    it came from, and comments the line out when it knows nothing."""
    root = _project(tmp_path / "svc", files)
    assert _init(root)[0] == 0
    lines = (root / "dockwright.yaml").read_text().splitlines()
    assert lines[lines.index('    dockerfile: "Dockerfile"          # your Dockerfile, built first as the parent') + 1] \
        == line
    assert invoke("compile", cwd=root).returncode == 0


def test_python_version_file(tmp_path: Path) -> None:
    root = _project(tmp_path / "x", {".python-version": "3.10.4\n"})
    assert _init(root)[0] == 0
    assert '    python: "3.10"  # from .python-version\n' in (root / "dockwright.yaml").read_text()


def test_requirements_with_options_are_taken_apart(tmp_path: Path) -> None:
    root = _project(tmp_path / "x", {
        "requirements.txt": "--index-url https://pypi.example/simple\n-e .\npandas==2.2.2\n--pre\n",
        "pyproject.toml": '[project]\nname = "x"\n[build-system]\nrequires = ["hatchling"]\n'
                          'build-backend = "hatchling.build"\n',
    })
    code, _, err = _init(root)
    assert code == 0
    assert err == "note: requirements.txt: '--pre' was left out; add what it means by hand\n" + DOT_NOTE
    text = (root / "dockwright.yaml").read_text()
    assert "requirements_files" not in text
    assert ('    index_url: "https://pypi.example/simple"\n    requirements:\n      - "pandas==2.2.2"\n'
            '    local_packages: ["."]') in text
    assert invoke("validate", cwd=root).returncode == 0


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    root = _project(tmp_path / "x", {"dockwright.yaml": "mine\n"})
    code, out, err = _init(root)
    assert (code, out) == (1, "")
    assert err == ("error: dockwright.yaml already exists; init never overwrites it (edit it, or remove it "
                   "and run init again)\n")
    assert (root / "dockwright.yaml").read_text() == "mine\n"


def test_an_empty_directory_gets_a_valid_file(tmp_path: Path) -> None:
    root = _project(tmp_path / "9 lives!", {})
    assert _init(root)[0] == 0
    assert "project: \"9-lives\"\n" in (root / "dockwright.yaml").read_text()
    assert sorted(p.name for p in root.iterdir()) == ["dockwright.yaml"]
    compile_project(root / "dockwright.yaml")


@pytest.mark.parametrize("raw, name", [("", "app"), ("--", "app"), ("A_B.c", "a-b-c"), ("x" * 100, "x" * 63),
                                       ("Ünïcode Proj", "n-code-proj")])
def test_project_names_are_always_valid(raw: str, name: str) -> None:
    assert init.project_name(raw) == name


def test_credentials_are_masked_and_left_out(tmp_path: Path) -> None:
    root = _project(tmp_path / "x", {
        "requirements.txt": "--index-url https://user:pw@pypi.corp.example/simple\nfoo @ https://tok123@h/foo.whl\n"
                            "pandas==2.2.2\n",
    })
    code, out, err = _init(root)
    assert code == 0, err
    assert err == ("note: requirements.txt: '--index-url https://***@pypi.corp.example/simple' carries credentials "
                   "and was left out: set index_url on the environment to a mirror that needs no token, or to an "
                   "authenticating proxy\n"
                   "note: requirements.txt: 'foo @ https://***@h/foo.whl' carries credentials and was left out; "
                   "install it from a mirror that needs no token, or through an authenticating proxy\n")
    text = (root / "dockwright.yaml").read_text()
    assert "pw" not in text + out + err and "tok123" not in text + out + err
    assert '    requirements:\n      - "pandas==2.2.2"\n' in text and "requirements_files" not in text
    assert invoke("validate", cwd=root).returncode == 0


def test_a_credential_alone_is_not_named_through_requirements_files(tmp_path: Path) -> None:
    root = _project(tmp_path / "x", {"requirements.txt": "foo @ https://tok123@h/foo.whl\n"})
    code, out, err = _init(root)
    assert code == 0, err
    assert err == ("note: requirements.txt: 'foo @ https://***@h/foo.whl' carries credentials and was left out; "
                   "install it from a mirror that needs no token, or through an authenticating proxy\n")
    assert "tok123" not in (root / "dockwright.yaml").read_text() + out
    assert invoke("validate", cwd=root).returncode == 0


_LINES = ["pandas==2.2.2", "numpy", "requests[socks]>=2", "--index-url https://user:pw@pypi.corp.example/simple",
          "-i https://pypi.example/simple", "--extra-index-url=https://t0k@x.example/simple", "-e .", "--pre",
          "foo @ https://tok123@h/foo.whl", "bar @ https://h.example/bar.whl", "# a comment", "",
          "baz==1 # pinned", "qux==1 --hash=sha256:00", "-r other.txt", "./libs/x", "a \\", "b==1",
          "git+https://oauth2:glpat-xyz@gitlab.example/r.git", "x ; python_version < '3.9'", "not a req!",
          "requests==2.32.3 \\", "    --hash=sha256:def", "--hash=sha256:0", "c==1 --hash sha256:1 --no-deps",
          "--extra-index-url https://download.pytorch.org/whl/cpu", "--index-url=https://b.example/simple",
          "--extra-index-url ${TOKEN}", "-i https://${USER}:${PASS}@h.example/simple", "--trusted-host h.example",
          "--trusted-host", "--trusted-host a b"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_LINES), max_size=6))
def test_init_writes_a_file_that_validates_or_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                       lines: list[str]) -> None:
    root = _project(tmp_path_factory.mktemp("init"), {"requirements.txt": "\n".join(lines) + "\n",
                                                      "other.txt": "six\n"})
    found = init.detect(root)
    for secret in ("pw@", "tok123", "t0k", "glpat-xyz"):
        assert all(secret not in note for note in found.notes)
        assert secret not in init.render(found)
    (root / "dockwright.yaml").write_text(init.render(found))
    compile_project(root / "dockwright.yaml")


@pytest.mark.parametrize(("python", "message"), [
    ("3.1", "error: --python: unknown Python version '3.1' (dockwright knows versions 3.8 to 3.14)"),
    ("2.7", "error: --python: unknown Python version '2.7' (dockwright knows versions 3.8 to 3.14)"),
    ("banana", "error: --python: invalid Python version 'banana' (write it like \"3.11\")"),
])
def test_a_bad_python_option_writes_nothing(tmp_path: Path, python: str, message: str) -> None:
    """The option is checked before anything is written (init wrote the file, then compile refused it, and a
    second init refused to overwrite the bad file)."""
    root = _project(tmp_path / "svc", {"requirements.txt": "six\n"})
    code, out, err = _init(root, "--python", python)
    assert (code, out, err) == (2, "", message + "\n")
    assert sorted(p.name for p in root.iterdir()) == ["requirements.txt"]
    code, _, _ = _init(root, "--python", "3.11")
    assert code == 0 and (root / "dockwright.yaml").is_file()


def test_a_project_name_written_otherwise_is_said(tmp_path: Path) -> None:
    root = _project(tmp_path / "svc", {})
    code, _, err = _init(root, "--project", "Bad_Name")
    assert code == 0
    assert "note: --project 'Bad_Name' is written as 'bad-name': a project name is lowercase letters, digits and '-'\n" in err
    assert "project: bad-name\n" in (root / "dockwright.yaml").read_text()


def test_hashed_requirements_are_taken_apart(tmp_path: Path) -> None:
    """pip-compile --generate-hashes output: compile refuses --hash in a requirements file, so init lists the
    requirements (continued lines joined, as pip does) and says once that the hashes were dropped."""
    root = _project(tmp_path / "x", {"requirements.txt": (
        "# generated by pip-compile\n"
        "numpy==1.26.4 --hash=sha256:abc\n"
        "requests==2.32.3 \\\n"
        "    --hash=sha256:def \\\n"
        "    --hash sha256:012\n"
        "    # via -r requirements.in\n"
        "six==1.16.0 --config-settings=x=y\n")})
    code, _, err = _init(root)
    assert code == 0
    assert err == ("note: requirements.txt: 'six==1.16.0 --config-settings=x=y' was left out: an option on a "
                   "requirement line is not supported; add what it means by hand\n"
                   "note: requirements.txt: its --hash options were left out: `dockwright lock` pins hashes\n")
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        '    python: "3.12"\n'
        "    requirements:\n"
        '      - "numpy==1.26.4"\n'
        '      - "requests==2.32.3"\n' + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0
    assert invoke("compile", cwd=root).returncode == 0


def test_index_options_are_written_to_the_environment(tmp_path: Path) -> None:
    root = _project(tmp_path / "x", {"requirements.txt": (
        "-i https://pypi.corp.example/simple\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        "--extra-index-url=https://download.pytorch.org/whl/cpu\n"
        "--extra-index-url https://tok@x.example/simple\n"
        "--extra-index-url file:///srv/wheels\n"
        "--index-url https://other.example/simple\n"
        "--trusted-host pypi.corp.example\n"
        "torch==2.3.0\n")})
    code, _, err = _init(root)
    assert code == 0
    assert err == ("note: requirements.txt: '--extra-index-url https://***@x.example/simple' carries credentials and "
                   "was left out: set extra_index_urls on the environment to a mirror that needs no token, or to an "
                   "authenticating proxy\n"
                   "note: requirements.txt: '--extra-index-url file:///srv/wheels' was left out: extra_index_urls "
                   "takes an http(s) URL\n"
                   "note: requirements.txt: '--index-url https://other.example/simple' was left out: index_url is "
                   "already https://pypi.corp.example/simple\n")
    text = (root / "dockwright.yaml").read_text()
    assert "tok" not in text
    assert text.split("  base:\n")[1] == (
        '    python: "3.12"\n'
        '    index_url: "https://pypi.corp.example/simple"\n'
        '    extra_index_urls: ["https://download.pytorch.org/whl/cpu"]\n'
        '    installer_args: ["--trusted-host", "pypi.corp.example"]\n'
        "    requirements:\n"
        '      - "torch==2.3.0"\n' + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0
    assert invoke("compile", cwd=root).returncode == 0


def test_poetry_python_restrictions_become_markers_and_groups_are_named(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": """
[project]
name = "p"
[project.optional-dependencies]
plot = ["matplotlib"]
gpu = ["cupy"]
[tool.poetry.dependencies]
numpy = {version = ">=1.26", python = ">=3.11"}
scipy = {version = "^1.13", python = "^3.10", markers = "sys_platform == 'linux'"}
attrs = {version = "23.2.0", python = "~3.11.2"}
old = {version = "*", python = "~2.7 || ^3.8"}
rich = {version = "^13", python = "*"}
[tool.poetry.dev-dependencies]
pytest = "*"
[tool.poetry.group.docs.dependencies]
mkdocs = "*"
"""})
    code, _, err = _init(root)
    assert code == 0
    assert err == ("note: pyproject.toml: dependency 'old' is for python = '~2.7 || ^3.8', which init cannot write "
                   "as a PEP 508 marker; add it by hand\n"
                   "note: pyproject.toml: optional dependencies (extras: gpu, plot) and the Poetry groups 'dev', "
                   "'docs' were left out: add what an image needs to its requirements\n")
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        '    python: "3.12"\n'
        "    requirements:\n"
        '      - "attrs==23.2.0 ; python_full_version >= \\"3.11.2\\" and python_version < \\"3.12\\""\n'
        '      - "numpy>=1.26 ; python_version >= \\"3.11\\""\n'
        '      - "rich>=13,<14"\n'
        '      - "scipy>=1.13,<2 ; (sys_platform == \'linux\') and (python_version >= \\"3.10\\" and '
        'python_version < \\"4\\")"\n' + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0
    assert invoke("compile", cwd=root).returncode == 0


@pytest.mark.parametrize(("toml", "note"), [
    ('[project]\nname = "p"\n[project.optional-dependencies]\ntest = ["pytest"]\n',
     "note: pyproject.toml: optional dependencies (extras: test) was left out: add what an image needs to its "
     "requirements\n"),
    ('[tool.poetry.group.dev.dependencies]\npytest = "*"\n',
     "note: pyproject.toml: the Poetry group 'dev' was left out: add what an image needs to its requirements\n"),
])
def test_one_optional_part_is_named(tmp_path: Path, toml: str, note: str) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": toml})
    code, _, err = _init(root)
    assert (code, err) == (0, note)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(alphabet="^~<>=!.*,| 0123456789a", max_size=12), st.integers(), st.none()),
       st.text(alphabet="^~<>=!.*, 0123456789", max_size=8))
def test_a_poetry_python_restriction_is_a_valid_marker_or_a_note(python: object, version: str) -> None:
    """Whatever `python` and `version` say, the dependency is one valid requirement or one note."""
    found = init.Found(project="p", python="3.12")
    init._from_poetry_dependencies({"numpy": {"version": version, "python": python}}, found)
    assert len(found.wanted) + len(found.notes) == 1
    for req in found.wanted:
        assert schema.requirement_problem(req.text) is None


# ---------------------------------------------------------------------------------------------
# What a new user's trial found: a written file that did not validate (and stayed on disk).

HEAD = ("# A starting dockwright.yaml, written by `dockwright init` from pyproject.toml, requirements.txt.\n"
        "# Check it with `dockwright validate`, then `dockwright compile` writes the Dockerfiles.\n"
        "version: 1\n")


def test_a_package_from_pyproject_and_a_requirements_file_is_listed_once(tmp_path: Path) -> None:
    """The requirements file's pin wins (it is the more specific), and a note says so; it was listed twice and
    validate refused the file init had written."""
    root = _project(tmp_path / "a", {
        "pyproject.toml": '[project]\nname = "a"\ndependencies = ["pandas>=2", "requests", "rich"]\n',
        "requirements.txt": "--extra-index-url https://example.com/simple\npandas==2.2.2\nrequests==2.32.3\n",
    })
    code, _, err = _init(root)
    assert (code, err) == (0, "note: pyproject.toml: 'pandas>=2' was left out: requirements.txt pins pandas as "
                              "'pandas==2.2.2', the more specific (an environment lists a package once)\n"
                              "note: pyproject.toml: 'requests' was left out: requirements.txt pins requests as "
                              "'requests==2.32.3', the more specific (an environment lists a package once)\n")
    assert (root / "dockwright.yaml").read_text() == HEAD + (
        "project: a\n"
        "\n"
        "environments:\n"
        "  base:\n"
        '    python: "3.12"\n'
        '    extra_index_urls: ["https://example.com/simple"]\n'
        "    requirements:\n"
        '      - "rich"\n'
        '      - "pandas==2.2.2"\n'
        '      - "requests==2.32.3"\n' + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0


def test_a_named_requirements_file_wins_over_pyproject_too(tmp_path: Path) -> None:
    """Named in requirements_files, the file's pin would have lost silently to pyproject's inline entry."""
    root = _project(tmp_path / "a", {
        "pyproject.toml": '[project]\nname = "a"\ndependencies = ["Pandas>=2", "rich"]\n',
        "requirements.txt": "pandas==2.2.2\n",
    })
    code, _, err = _init(root)
    assert (code, err) == (0, "note: pyproject.toml: 'Pandas>=2' was left out: requirements.txt pins pandas as "
                              "'pandas==2.2.2', the more specific (an environment lists a package once)\n")
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        '    python: "3.12"\n'
        '    requirements_files: ["requirements.txt"]\n'
        "    requirements:\n"
        '      - "rich"\n' + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0


@pytest.mark.parametrize(("directory", "line"), [
    ("2046", 'project: "2046"'), ("yes", 'project: "yes"'), ("null", 'project: "null"'), ("0x10", 'project: "0x10"'),
    ("1e3", 'project: "1e3"'), ("True", 'project: "true"'), ("On", 'project: "on"'), ("~", "project: app"),
    ("0o10", 'project: "0o10"'), ("my model", "project: my-model"), ("nan", "project: nan"),
])
def test_a_project_name_yaml_would_read_otherwise_is_quoted(tmp_path: Path, directory: str, line: str) -> None:
    root = _project(tmp_path / directory, {})
    assert _init(root)[0] == 0
    assert (root / "dockwright.yaml").read_text() == (
        "# A starting dockwright.yaml, written by `dockwright init`.\n"
        "# Check it with `dockwright validate`, then `dockwright compile` writes the Dockerfiles.\n"
        f"version: 1\n{line}\n\nenvironments:\n  base:\n    python: \"3.12\"\n" + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0


def test_what_does_not_compile_is_not_written(tmp_path: Path) -> None:
    """init compiles what it would write first; when that fails (here: the project's own requirements file lists
    a package twice, differently), nothing is written and one line says why."""
    root = _project(tmp_path / "a", {"requirements.txt": "pandas==1.5\n# later\npandas==2.2.2\n"})
    code, out, err = _init(root)
    assert (code, out) == (1, "")
    assert err == ("error: dockwright.yaml was not written: what init made from this project does not compile: "
                   "requirements.txt:3: requirement 'pandas' is listed twice, differently (first as 'pandas==1.5' "
                   "at requirements.txt:1; keep one)\n")
    assert sorted(p.name for p in root.iterdir()) == ["requirements.txt"]


def test_optional_poetry_dependencies_are_left_out_and_named(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": """
[tool.poetry]
name = "p"
[tool.poetry.dependencies]
numpy = "^1.26"
k = {version = "^1", optional = true}
m = [{version = "<2", python = "<3.10", optional = true}, {version = ">=2", python = ">=3.10", optional = true}]
[tool.poetry.extras]
plots = ["k"]
"""})
    code, _, err = _init(root)
    assert (code, err) == (0, "note: pyproject.toml: optional dependencies (extras: plots) and the optional Poetry "
                              "dependencies 'k', 'm' were left out: add what an image needs to its requirements\n")
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        '    python: "3.12"\n'
        "    requirements:\n"
        '      - "numpy>=1.26,<2"\n' + FOOTER)


@pytest.mark.parametrize(("toml", "local"), [
    ('[project]\nname = "p"\ndependencies = ["six"]\n', False),
    ('[tool.poetry]\nname = "p"\npackages = [{include = "p"}]\n[tool.poetry.dependencies]\nsix = "*"\n', False),
    ('[project]\nname = "p"\ndependencies = ["six"]\n[build-system]\nrequires = ["hatchling"]\n'
     'build-backend = "hatchling.build"\n', True),
    ('[project]\nname = "p"\ndependencies = ["six"]\nbuild-system = "no table"\n', False),
])
def test_only_a_package_with_a_build_system_is_a_local_package(tmp_path: Path, toml: str, local: bool) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": toml})
    code, _, err = _init(root)
    assert (code, err) == (0, DOT_NOTE if local else "")
    written = (root / "dockwright.yaml").read_text().split("  base:\n")[1]
    assert written == ('    python: "3.12"\n    requirements:\n      - "six"\n'
                       + ('    local_packages: ["."]   # your package, installed after the requirements\n' if local
                          else "") + FOOTER)


@pytest.mark.parametrize(("python", "kept", "note"), [
    ("3.12", '      - "foo>=2 ; python_version >= \\"3.10\\""\n',
     "note: pyproject.toml: foo is listed 2 times ('foo<2 ; python_version < \"3.10\"', 'foo>=2 ; python_version >= "
     "\"3.10\"'); an environment lists a package once, so init kept 'foo>=2 ; python_version >= \"3.10\"', the one "
     "for Python 3.12 on Linux x86-64\n"),
    ("3.9", '      - "foo<2 ; python_version < \\"3.10\\""\n',
     "note: pyproject.toml: foo is listed 2 times ('foo<2 ; python_version < \"3.10\"', 'foo>=2 ; python_version >= "
     "\"3.10\"'); an environment lists a package once, so init kept 'foo<2 ; python_version < \"3.10\"', the one "
     "for Python 3.9 on Linux x86-64\n"),
])
def test_poetry_multiple_constraints_keep_the_one_for_the_images_python(tmp_path: Path, python: str, kept: str,
                                                                        note: str) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": (
        '[tool.poetry.dependencies]\nfoo = [{version = "<2", python = "<3.10"}, {version = ">=2", python = ">=3.10"}]\n'
        'bar = [{version = "^1", markers = "sys_platform == \'win32\'"}, {version = "^2", markers = "os_name == '
        '\'nt\'"}]\n')})
    code, _, err = _init(root, "--python", python)
    assert (code, err) == (0, "note: pyproject.toml: bar is listed 2 times ('bar>=1,<2 ; sys_platform == 'win32'', "
                              "'bar>=2,<3 ; os_name == 'nt'') and none of them is for Python " + python
                           + " on Linux x86-64, so it was left out: an environment lists a package once; add the one "
                             "the image needs by hand\n" + note)
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        f'    python: "{python}"\n    requirements:\n' + kept + FOOTER)
    assert invoke("validate", cwd=root).returncode == 0


def test_a_dependency_init_cannot_read_is_named_as_what_it_is(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": (
        '[tool.poetry.dependencies]\nfoo = [{version = "<2"}, {git = "https://g.example/foo.git"}]\nbar = 3\n')})
    code, _, err = _init(root)
    assert (code, err) == (0, "note: pyproject.toml: dependency 'bar' is not a version constraint init can read; add "
                              "it by hand\n"
                              "note: pyproject.toml: dependency 'foo' comes from a path, git or URL; add it by hand "
                              "(local_packages: for a directory in the project)\n")


def test_r_lines_are_kept(tmp_path: Path) -> None:
    """A requirements file taken apart keeps what its -r lines name: a file compile reads as written is named in
    requirements_files, one it does not is taken apart in turn; a -r file is not called unused."""
    root = _project(tmp_path / "r", {
        "requirements.txt": ("-r requirements-base.txt\n--extra-index-url https://example.com/simple\nflask\n"
                             "--requirement=reqs/gpu.txt\n-r missing.txt\n-r ../outside.txt\n"),
        "requirements-base.txt": "numpy==1.26.4\n-r requirements-common.txt\n",
        "requirements-common.txt": "six\n",
        "reqs/gpu.txt": "-i https://pypi.example/simple\ntorch==2.3.0\n-r ../requirements.txt\n",
        "requirements-dev.txt": "pytest\n",
    })
    code, _, err = _init(root)
    assert (code, err) == (0, "note: reqs/gpu.txt: '-r ../requirements.txt' was left out: it leads back to a file "
                              "that names it (pip refuses that loop)\n"
                              "note: requirements.txt: '-r missing.txt' was left out: it names no requirements file "
                              "in the project; add what it means by hand\n"
                              "note: requirements.txt: '-r ../outside.txt' was left out: it names no requirements "
                              "file in the project; add what it means by hand\n"
                              "note: requirements-dev.txt is not used: add it to an environment that needs it, e.g. "
                              "one that extends base (requirements_files: [requirements-dev.txt])\n")
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        '    python: "3.12"\n'
        '    index_url: "https://pypi.example/simple"\n'
        '    extra_index_urls: ["https://example.com/simple"]\n'
        '    requirements_files: ["requirements-base.txt"]\n'
        "    requirements:\n"
        '      - "flask"\n'
        '      - "torch==2.3.0"\n' + FOOTER)
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[0] == (
        "# A starting dockwright.yaml, written by `dockwright init` from requirements.txt.\n"
        "# Check it with `dockwright validate`, then `dockwright compile` writes the Dockerfiles.\n"
        "version: 1\nproject: r\n\nenvironments:\n")
    assert invoke("validate", cwd=root).returncode == 0


def test_a_named_file_with_r_lines_uses_them(tmp_path: Path) -> None:
    root = _project(tmp_path / "r", {"requirements.txt": "-r requirements-base.txt\nflask\n",
                                     "requirements-base.txt": "numpy==1.26.4\n-r requirements-empty.txt\n",
                                     "requirements-empty.txt": "# nothing yet\n"})
    code, _, err = _init(root)
    assert (code, err) == (0, "")
    assert '    requirements_files: ["requirements.txt"]\n' in (root / "dockwright.yaml").read_text()


@pytest.mark.parametrize("written", ["pypy3.10", "3.13t", "3.7", "graalpy-24.0", "2.7.18", "system", "3.99"])
def test_a_python_version_file_dockwright_does_not_target_is_said(tmp_path: Path, written: str) -> None:
    root = _project(tmp_path / "x", {".python-version": f"# pyenv\n{written}\n3.11\n"})
    code, _, err = _init(root)
    assert (code, err) == (0, f"note: .python-version: '{written}' was not used: it is not a CPython version "
                              "dockwright targets (the official python images, 3.8 to 3.14); set the one the image "
                              "needs with --python\n")
    assert '    python: "3.12"\n' in (root / "dockwright.yaml").read_text()


@pytest.mark.parametrize("written", ["3.11", "3.11.4", "3.11.0rc1", "3.11-dev", "cpython@3.11", "cpython-3.11",
                                     "3.11.4/envs/venv", "3.11 3.10"])
def test_a_python_version_file_names_a_cpython_minor(tmp_path: Path, written: str) -> None:
    root = _project(tmp_path / "x", {".python-version": f"{written}\n"})
    assert _init(root)[:3:2] == (0, "")
    assert '    python: "3.11"  # from .python-version\n' in (root / "dockwright.yaml").read_text()


# ---------------------------------------------------------------------------------------------
# Property: every value init writes reads back as exactly that string, and a comment never ends its line.

# No lone surrogate: what init writes comes from UTF-8 text and TOML (a directory's name only through project_name).
_ODD = st.sampled_from(["\x85", "\u2028", "\u2029", "\ufeff", "\x00", "\x7f", "\U0010ffff", "\ue000", "\t", "\r", "\n", "'", '"',
                        "\\", ": ", " #", "- ", "{", "[", "&a", "*a", "!!int", "%", "@", "`", "|", ">", "~"])
_TEXT = st.lists(st.one_of(st.text(max_size=4), _ODD, st.sampled_from(["2046", "yes", "null", "0x10", "1e3", ".inf",
                                                                       "on", "No", "3.10", "-1", "=", "<<"])),
                 max_size=4).map("".join)


@settings(max_examples=300, deadline=None)
@given(project=_TEXT, python=_TEXT, python_from=st.one_of(st.none(), _TEXT), index_url=st.one_of(st.none(), _TEXT),
       lists=st.lists(st.lists(_TEXT, max_size=3), min_size=5, max_size=5), dockerfile=st.booleans())
def test_what_init_writes_reads_back_as_exactly_those_values(project: str, python: str, python_from: str | None,
                                                             index_url: str | None, lists: list[list[str]],
                                                             dockerfile: bool) -> None:
    from compiler.errors import Collector
    from compiler.load import parse

    extra, args, files, reqs, local = lists
    found = init.Found(project=project, python=python, python_from=python_from, index_url=index_url,
                       extra_index_urls=extra, installer_args=args, requirements_files=files, requirements=reqs,
                       local_packages=local, dockerfile="Dockerfile" if dockerfile else None)
    sink = Collector()
    doc = parse(init.render(found), Path("dockwright.yaml"), sink)
    assert not sink.errors
    base: dict[str, object] = {"dockerfile": "Dockerfile"} if dockerfile else {"python": python}
    if dockerfile and python_from is not None:
        base["python"] = python
    base.update({"index_url": index_url} if index_url is not None else {})
    base.update({k: v for k, v in [("extra_index_urls", extra), ("installer_args", args), ("requirements_files", files),
                                   ("requirements", reqs), ("local_packages", local)] if v})
    assert doc.data == {"version": 1, "project": project, "environments": {"base": {**base, "workdir": "/app"}},
                        "runner": {"environment": "base"}}


# ---------------------------------------------------------------------------------------------
# Property: for a realistic project, init writes a file that validates and compiles, or writes nothing and says why
# in one line.

_REQ_LINES = ["pandas==2.2.2", "pandas>=2", "Pandas", "numpy", "requests[socks]>=2 ; python_version >= '3.8'",
              "# a comment", "", "six==1.16.0  # pinned", "-r requirements-base.txt", "-r requirements.txt",
              "--requirement=sub/more.txt", "-rrequirements-dev.txt", "-r missing.txt", "-r ../up.txt",
              "--extra-index-url https://example.com/simple", "-i https://pypi.example/simple", "--pre",
              "--trusted-host pypi.example", "-e .", "./libs/x", "flask==3 --hash=sha256:00",
              "torch==2.3.0 \\", "    --hash=sha256:abc", "foo @ https://tok@h.example/foo.whl", "not a req!",
              "attrs ; sys_platform == 'win32'", "attrs>=23"]
_PEP621 = ["pandas>=2", "numpy<2 ; python_version < '3.10'", "numpy>=2 ; python_version >= '3.10'", "rich",
           "requests==2.32.3", "x @ git+https://g.example/x.git", "bad req!", "attrs ; sys_platform == 'linux'"]
_POETRY = ['numpy = "^1.26"', 'k = {version = "^1", optional = true}', 'scipy = {version = "~1.13", python = "^3.10"}',
           'foo = [{version = "<2", python = "<3.10"}, {version = ">=2", python = ">=3.10"}]',
           'bar = [{version = "^1", markers = "sys_platform == \'win32\'"}, {version = "^2"}]',
           'mylib = {path = "../mylib"}', 'pandas = "2.2.2"', 'old = {version = "*", python = "~2.7 || ^3.8"}',
           'odd = 3', 'rich = {version = "^13", extras = ["jupyter"]}', 'python = "^3.9"']
_VERSIONS = ["3.11", "3.13t", "pypy3.10", "cpython@3.10", "3.7", "3.12.1", "", "# only a comment", "3.14"]
_DOCKERFILES = ["FROM python:3.11-slim\n", "FROM debian:12\n", "ARG PY=3.10\nFROM python:${PY}-slim\n", "FROM\n"]
_NAMES = st.one_of(st.sampled_from(["2046", "yes", "null", "0x10", "~", "-", "1e3", "On", "my project", "Ünï"]),
                   st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1,
                           max_size=20).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200))


@st.composite
def _trees(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    files: dict[str, str] = {}
    lines = st.lists(st.sampled_from(_REQ_LINES), max_size=6).map(lambda ls: "\n".join(ls) + "\n")
    for name in ("requirements.txt", "requirements-base.txt", "requirements-dev.txt", "sub/more.txt"):
        if draw(st.booleans()):
            files[name] = draw(lines)
    if draw(st.booleans()):
        deps = draw(st.lists(st.sampled_from(_PEP621), max_size=4))
        text = '[project]\nname = "p"\ndependencies = [' + ", ".join(f'"{d}"' for d in deps).replace("'", "'") + "]\n"
        if draw(st.booleans()):
            text += '[project.optional-dependencies]\ntest = ["pytest"]\n'
        if draw(st.booleans()):
            text += "[tool.poetry.dependencies]\n" + "".join(
                line + "\n" for line in dict.fromkeys(draw(st.lists(st.sampled_from(_POETRY), max_size=4))))
        if draw(st.booleans()):
            text += '[tool.poetry.group.dev.dependencies]\npytest = "*"\n'
        if draw(st.booleans()):
            text += '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        files["pyproject.toml"] = text
    if draw(st.booleans()):
        files[".python-version"] = draw(st.sampled_from(_VERSIONS)) + "\n"
    if draw(st.booleans()):
        files["Dockerfile"] = draw(st.sampled_from(_DOCKERFILES))
    return draw(_NAMES), files


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=_trees(), python=st.sampled_from([None, "3.9", "3.12"]))
def test_init_writes_a_file_that_compiles_or_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                     tree: tuple[str, dict[str, str]], python: str | None) -> None:
    name, files = tree
    try:
        root = _project(tmp_path_factory.mktemp("tree") / name, files)
    except OSError:  # a name this file system refuses
        return
    code, out, err = _init(root, *(["--python", python] if python else []))
    if code == 0:
        assert out.startswith("wrote dockwright.yaml")
        assert invoke("validate", cwd=root).returncode == 0
        compile_project(root / "dockwright.yaml")
        assert all(line.startswith("note: ") for line in err.splitlines())
    else:
        assert (code, out) == (1, "")
        assert err.count("\n") == 1 and err.startswith("error: dockwright.yaml was not written: "), err
        assert not (root / "dockwright.yaml").exists()


def test_a_package_two_files_taken_apart_list_differently_is_kept_once(tmp_path: Path) -> None:
    root = _project(tmp_path / "r", {"requirements.txt": "--pre\npandas==2.2.2\n-r more.txt\n",
                                     "more.txt": "--pre\nPandas>=2\nsix\n"})
    code, _, err = _init(root)
    assert (code, err) == (0, "note: requirements.txt: '--pre' was left out; add what it means by hand\n"
                              "note: more.txt: '--pre' was left out; add what it means by hand\n"
                              "note: more.txt: 'Pandas>=2' was left out: requirements.txt lists pandas as "
                              "'pandas==2.2.2' (an environment lists a package once)\n")
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        '    python: "3.12"\n    requirements:\n      - "pandas==2.2.2"\n      - "six"\n' + FOOTER)


def test_a_package_in_pep621_and_poetry_tables_is_kept_once(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", {"pyproject.toml": '[project]\nname = "p"\ndependencies = ["numpy>=1"]\n'
                                                       '[tool.poetry.dependencies]\nnumpy = "^1.26"\n'})
    code, _, err = _init(root)
    assert (code, err) == (0, "note: pyproject.toml: numpy is listed 2 times ('numpy>=1', 'numpy>=1.26,<2'); an "
                              "environment lists a package once, so init kept 'numpy>=1', the first of those for "
                              "Python 3.12 on Linux x86-64\n")
    assert (root / "dockwright.yaml").read_text().split("  base:\n")[1] == (
        '    python: "3.12"\n    requirements:\n      - "numpy>=1"\n' + FOOTER)


def test_the_refusal_is_one_line_naming_the_first_problem(tmp_path: Path) -> None:
    from compiler.errors import Diagnostic, Location

    target = tmp_path / "dockwright.yaml"
    diagnostics = [Diagnostic(Location(target.absolute(), 13, 9, "      - x"), "requirement 'x' is listed twice"),
                   Diagnostic(None, "another")]
    assert init.refusal(diagnostics, target) == (
        f"{target} was not written: what init made from this project does not compile: line 13 of it: "
        "requirement 'x' is listed twice (and 1 more)")
    hinted = [Diagnostic(None, "unknown Python version '3.7' in environment 'base'", "use 3.8 to 3.14"), *diagnostics]
    assert init.refusal(hinted, target) == (
        f"{target} was not written: what init made from this project does not compile: unknown Python version '3.7' "
        "in environment 'base' (use 3.8 to 3.14; and 2 more)")


@pytest.mark.parametrize("name", ["pyproject.toml", ".python-version", "requirements.txt", "requirements-dev.txt",
                                  "Dockerfile"])
def test_a_file_that_leads_out_of_the_project_is_not_read(tmp_path: Path, name: str) -> None:
    """As compile reads no file outside the project, init does not either: a link out is a note, and nothing in
    the file it leads to reaches dockwright.yaml."""
    outside, root = tmp_path / "outside", tmp_path / "p"
    outside.mkdir()
    root.mkdir()
    secret = {"pyproject.toml": '[project]\nname = "secretname"\ndependencies = ["secretpkg==1"]\n',
              ".python-version": "3.10\n", "Dockerfile": "FROM python:3.10-slim\n"}.get(name, "secretpkg==1\n")
    (outside / "f").write_text(secret)
    (root / name).symlink_to(outside / "f")
    code, out, err = _init(root)
    assert code == 0, err
    text = (root / "dockwright.yaml").read_text()
    assert "secret" not in text and "3.10" not in text and "dockerfile" not in text
    assert f"note: {name} leads outside the project directory through a symbolic link: init did not read it" in \
        err.splitlines()


def test_a_requirement_on_the_project_itself_becomes_its_extras_requirements(tmp_path: Path) -> None:
    """`pp[extra]` in pp's own dependencies means pp's extras; on an index, `pp` could be anyone's package."""
    root = _project(tmp_path / "pp", {"pyproject.toml": (
        '[project]\nname = "PP"\nversion = "1"\ndependencies = ["pp[extra]", "six==1.16.0"]\n'
        '[project.optional-dependencies]\nextra = ["idna==3.7", "pp[more,extra]"]\nmore = ["attrs==23.2.0"]\n')})
    code, _, err = _init(root)
    assert code == 0, err
    text = (root / "dockwright.yaml").read_text()
    assert '      - "idna==3.7"\n      - "attrs==23.2.0"\n      - "six==1.16.0"\n' in text and "pp[" not in text
    assert ("note: pyproject.toml: pp[extra] names the project itself: the requirements of its extras (extra) are "
            "listed instead") in err.splitlines()


def test_a_byte_order_mark_is_read_as_pip_and_compile_read_it(tmp_path: Path) -> None:
    root = _project(tmp_path / "bom", {})
    (root / "requirements.txt").write_bytes(b"\xef\xbb\xbfflask==3.0.0\n--index-url https://example.com/simple\n")
    (root / ".python-version").write_bytes(b"\xef\xbb\xbf3.11\n")
    (root / "pyproject.toml").write_bytes(b'\xef\xbb\xbf[project]\nname = "bommed"\n')
    code, _, err = _init(root)
    assert code == 0, err
    text = (root / "dockwright.yaml").read_text()
    assert 'project: bommed\n' in text and '"flask==3.0.0"' in text and 'python: "3.11"' in text
    assert "\\ufeff" not in err and "\ufeff" not in text
