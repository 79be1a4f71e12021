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
                   "(local_packages: for a directory in the project)\n" + DOT_NOTE)
    text = (root / "dockwright.yaml").read_text()
    assert text.split("  base:\n")[1] == (
        '    python: "3.11"  # from pyproject.toml requires-python ~3.11\n'
        "    requirements:\n"
        '      - "anything"\n'
        '      - "attrs==23.2.0"\n'
        '      - "numpy>=1.26.4,<2"\n'
        '      - "rich[jupyter]>=13,<14 ; sys_platform == \'linux\'"\n'
        '      - "scipy>=1.13,<1.14"\n'
        '    local_packages: ["."]   # your package, installed after the requirements\n' + FOOTER)
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
    assert "project: 9-lives\n" in (root / "dockwright.yaml").read_text()
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
    assert len(found.requirements) + len(found.notes) == 1
    for req in found.requirements:
        assert schema.requirement_problem(req) is None
