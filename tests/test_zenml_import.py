"""`dockwright import zenml`: golden cases from real ZenML pipelines (tests/zenml_cases/<name>/).

Each case is a project (pipeline.py, files it names) plus `args` (the command line after
`import zenml`), `expected.txt` (exit code, stdout, stderr) and, when the import succeeds,
`expected.yaml` (the dockwright.yaml written). ZenML is imported once, in this process (it takes
seconds); one test runs the real console script in a subprocess.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from compiler.driver import compile_project
from dockerfile_check import check_dockerfile, hadolint, spec_images
from helpers import ROOT, UPDATE, run_cli, tree

CASES = Path(__file__).resolve().parent / "zenml_cases"
NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir())
SKIP = shutil.ignore_patterns("args", "expected.txt", "expected.yaml", "__pycache__")


@pytest.fixture(scope="module")
def zenml_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private ZenML configuration, offline, for this module's in-process imports."""
    env = {"ZENML_CONFIG_PATH": str(tmp_path_factory.mktemp("zenml-config")), "ZENML_ANALYTICS_OPT_IN": "false",
           "ZENML_LOGGING_VERBOSITY": "ERROR", "ZENML_ENABLE_RICH_TRACEBACK": "false",
           "AUTO_OPEN_DASHBOARD": "false"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _run(project: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    from compiler.cli import main

    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["import", "zenml", *args], prog_name="dockwright")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def _expected(code: int, out: str, err: str) -> str:
    return f"exit {code}\n--- stdout\n{out}--- stderr\n{err}"


@pytest.mark.parametrize("name", NAMES)
def test_import_case(name: str, tmp_path: Path, zenml_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES / name
    project = tmp_path / name
    shutil.copytree(case, project, ignore=SKIP)
    before = tree(project)
    code, out, err = _run(project, shlex.split((case / "args").read_text(encoding="utf-8")), monkeypatch)
    got = _expected(code, out, err)
    written = sorted(p for p in project.rglob("dockwright.yaml") if "dockwright.yaml" not in before)
    made = written[0].read_text(encoding="utf-8") if code == 0 else None
    if UPDATE:
        (case / "expected.txt").write_text(got, encoding="utf-8")
        if made is not None:
            (case / "expected.yaml").write_text(made, encoding="utf-8")
        else:
            (case / "expected.yaml").unlink(missing_ok=True)
    assert got == (case / "expected.txt").read_text(encoding="utf-8")
    if code != 0:
        # nothing half-written: the project is exactly as it was
        assert {k: v for k, v in tree(project).items() if "__pycache__" not in k} == \
            {k: v for k, v in before.items() if "__pycache__" not in k}
        assert not (case / "expected.yaml").exists()
        return
    assert made == (case / "expected.yaml").read_text(encoding="utf-8")
    # it compiled, and the output on disk is what compile writes
    from compiler.cli import main

    check = CliRunner().invoke(main, ["compile", "--check", "-f", str(written[0])], prog_name="dockwright")
    assert check.exit_code == 0, check.output
    # the Dockerfiles lint clean and BuildKit's parser reads back exactly the instructions meant
    compiled = compile_project(written[0])
    images = spec_images(compiled)
    assert images
    for image, spec, requirements_src in images:
        dockerfile = compiled.out_dir / "images" / image / "Dockerfile"
        check_dockerfile(dockerfile, spec, requirements_src)
        linted = hadolint(dockerfile)
        assert linted.returncode == 0 and linted.stdout == "", linted.stdout + linted.stderr


@pytest.mark.parametrize(("attribute", "hint"), [
    ("nightly_reprot", "(did you mean 'nightly_report'?)"),
    ("training", "(its pipelines: nightly_report)"),
])
def test_a_pipeline_not_found_names_the_ones_there(attribute: str, hint: str, tmp_path: Path,
                                                  zenml_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The err_attribute case's module, asked for a name it lacks: a did-you-mean, else its pipelines; nothing
    written."""
    project = tmp_path / "p"
    shutil.copytree(CASES / "err_attribute", project, ignore=SKIP)
    before = tree(project)
    code, out, err = _run(project, [f"pipeline.py:{attribute}"], monkeypatch)
    assert (code, out, err) == (1, "", f"error: pipeline.py: no attribute '{attribute}' {hint}\n")
    assert {k: v for k, v in tree(project).items() if "__pycache__" not in k} == \
        {k: v for k, v in before.items() if "__pycache__" not in k}


def test_a_run_configuration_that_is_not_yaml_is_located(tmp_path: Path, zenml_env: dict[str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """As every YAML error: file:line:col, what, what to do, the line and a caret; nothing written."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/bad.yaml").write_text("a: 1\n b: [\n")
    code, out, err = _run(tmp_path, ["configs/bad.yaml"], monkeypatch)
    assert (code, out) == (1, "")
    assert err == ("configs/bad.yaml:2:3: error: not valid YAML: mapping values are not allowed here (a ZenML run "
                   "configuration is a YAML mapping, like `settings: {docker: ...}`)\n    2 |  b: [\n      |   ^\n"
                   "1 error\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs"]


def test_every_docker_setting_is_decided() -> None:
    """Each field of ZenML's DockerSettings is mapped or warned about: a new ZenML field fails here."""
    from zenml.config.docker_settings import DockerSettings

    from compiler.zenml_import import FIELDS

    assert set(FIELDS) == set(DockerSettings.model_fields)


def test_integrations_come_from_zenml_registry(zenml_env: dict[str, str]) -> None:
    from zenml.integrations.registry import integration_registry

    expected = (CASES / "training" / "expected.yaml").read_text(encoding="utf-8")
    reqs = integration_registry.select_integration_requirements("sklearn")
    assert "requirements: [" + ", ".join(f'"{r}"' for r in sorted(reqs)) + "]" in expected


def test_every_zenml_integration_imports_and_compiles(tmp_path: Path, zenml_env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """All of ZenML's registry in one environment: what its integrations say (a package named twice,
    markers, extras) is written so that dockwright accepts it, and one package constrained by two
    integrations is joined as pip joins it."""
    from zenml.integrations.registry import integration_registry

    names = sorted(integration_registry.integrations)
    assert len(names) > 50
    (tmp_path / "pipeline.py").write_text(
        "from zenml import pipeline, step\nfrom zenml.config import DockerSettings\n\n\n@step\ndef only() -> None:\n"
        "    pass\n\n\n@pipeline(settings={'docker': DockerSettings(install_stack_requirements=False, "
        f"required_integrations={names!r})}})\ndef everything() -> None:\n    only()\n", encoding="utf-8")
    code, out, err = _run(tmp_path, ["pipeline.py", "--python", "3.11"], monkeypatch)
    assert (code, err) == (0, ""), err
    text = (tmp_path / "dockwright.yaml").read_text(encoding="utf-8")
    assert '"pandas<2.2.0,>=2.0.0"' in text  # deepchecks names pandas twice: one requirement, both bounds
    assert '"whylogs[viz,whylabs]~=1.0.5"' in text  # whylogs names itself twice, with other extras
    assert '"pandas<2.2.0,<3,>=2.0.0"' in text  # the environment joins what several bundles say


@pytest.mark.parametrize("raw, name", [("Train_Model", "train_model"), ("evaluate-again", "evaluate-again"),
                                       ("step 1!", "step-1"), ("a___b", "a-b"), ("__init__", "init"),
                                       ("Ünïcode", "n-code"), ("!!!", "x"), ("a__b", "a__b")])
def test_names_are_mapped_to_dockwright_names(raw: str, name: str) -> None:
    from compiler.schema import NAME_RE
    from compiler.zenml_import import dockwright_name

    assert dockwright_name(raw) == name
    assert NAME_RE.fullmatch(name)


def test_without_zenml_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zenml", None)  # what `import zenml` does when it is not installed
    code, out, err = _run(tmp_path, ["pipeline.py"], monkeypatch)
    assert (code, out, err) == (2, "", "error: ZenML is not installed: pip install 'dockwright[zenml]'\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a process that imports ZenML: seconds
def test_console_script_imports_a_pipeline(tmp_path: Path, zenml_env: dict[str, str]) -> None:
    """The real command, in its own process: help says that importing runs the user's code."""
    project = tmp_path / "proj"
    shutil.copytree(CASES / "training", project, ignore=SKIP)
    done = run_cli("import", "zenml", "pipeline.py", "--python", "3.11", cwd=project, env=zenml_env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (project / "dockwright.yaml").read_text(encoding="utf-8") == \
        (CASES / "training" / "expected.yaml").read_text(encoding="utf-8").replace("project: training",
                                                                                   "project: proj")
    again = run_cli("import", "zenml", "pipeline.py", cwd=project, env=zenml_env)
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == ("error: dockwright.yaml already exists; import never overwrites it (remove it, "
                            "or import into another directory with -C DIR)\n")
    helped = run_cli("import", "zenml", "--help", cwd=project)
    assert "RUNS ITS CODE" in " ".join(helped.stdout.split())
    assert str(ROOT) not in done.stdout


# ---- properties: every name maps to a valid one, every value reads back as it was ------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from compiler.schema import NAME_RE  # noqa: E402


@given(st.text(max_size=40))
def test_any_name_becomes_a_dockwright_name(raw: str) -> None:
    from compiler.zenml_import import dockwright_name

    name = dockwright_name(raw)
    assert NAME_RE.fullmatch(name)
    assert dockwright_name(name) == name


@given(st.from_regex(NAME_RE, fullmatch=True).filter(lambda n: len(n) < 60))
def test_a_valid_name_is_kept(name: str) -> None:
    from compiler.zenml_import import dockwright_name

    assert dockwright_name(name) == name


def _read_back(text: str) -> object:
    from compiler.errors import Collector
    from compiler.load import parse

    sink = Collector()
    doc = parse(text, Path("dockwright.yaml"), sink)
    assert not sink.errors, [d.message for d in sink.errors]
    return doc.data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=30), max_size=5),
       reqs=st.lists(st.text(max_size=30), max_size=4), image=st.text(min_size=1, max_size=30))
def test_settings_read_back_exactly(env: dict[str, str], reqs: list[str], image: str, tmp_path: Path,
                                    zenml_env: dict[str, str]) -> None:
    """Whatever a ZenML setting holds, the YAML written says exactly that (or compile refuses it): no
    value can add a key, end a line or change its type."""
    from zenml.config.docker_settings import DockerSettings

    from compiler.zenml_import import _combined, _Pipeline, build

    docker = DockerSettings(parent_image=image, environment=env, requirements=reqs, install_stack_requirements=False)
    made = build([_Pipeline("p", docker, [("s", None, [])], True)], root=tmp_path, cwd=tmp_path, project="x",
                 python="3.11", target="pipeline.py")
    data = _read_back(made.text)
    assert isinstance(data, dict)
    written = data["environments"]["p"]
    expected_env = {k.upper(): v.replace("$", "$$") for k, v in env.items()}
    assert written.get("env", {}) == dict(sorted(expected_env.items()))
    assert written.get("requirements", []) == (_combined(reqs) if reqs else [])
    assert written["parent_image"] == image
    assert data["pipelines"] == {"p": {"environment": "p", "steps": {"s": {}}}}


def test_zenml_is_imported_only_by_import_zenml() -> None:
    """zenml takes seconds to import: the CLI, compile and `import --help` never load it."""
    import subprocess

    code = ("import sys; from compiler.cli import main\n"
            "for args in (['compile', '--check', '-f', sys.argv[1]], ['import', 'zenml', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'zenml' or m == 'compiler.zenml_import'))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "quickstart")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"
