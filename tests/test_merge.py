"""Each merge and layering rule (docs/language.md), pinned on small in-memory projects."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import assume, given, settings, strategies as st

from compiler.fields import FIELDS

from compiler.manifest import StepRecord
from compiler.model import Removal
from compiler.driver import compile_project


def compiled(project, body: str):
    root = project({"dockwright.yaml": "version: 1\nproject: t\n" + body})
    return compile_project(Path(root) / "dockwright.yaml")


def values(mapping) -> dict[str, str]:
    return {k: v.value for k, v in mapping.items()}


BASE = """environments:
  parent:
    python: "3.11"
{parent}
  child:
    extends: parent
{child}
runner: {{environment: child}}
"""


def two(project, parent: str, child: str):
    c = compiled(project, BASE.format(parent=parent, child=child))
    return c.plan.environments["parent"], c.plan.environments["child"], c


def test_scalars_child_wins(project) -> None:
    _, child, _ = two(project, "    workdir: /a\n    user: a", "    workdir: /b")
    assert child.workdir.value == "/b" and child.user.value == "a"


def test_env_labels_build_args_merge_by_key_and_null_removes(project) -> None:
    _, child, _ = two(
        project,
        "    env: {A: '1', B: '2'}\n    labels: {x: '1', y: '2'}\n    build_args: {P: '1', Q: '2'}",
        "    env: {B: '3', A: null, C: '4'}\n    labels: {y: null}\n    build_args: {Q: '9'}",
    )
    assert values(child.env) == {"B": "3", "C": "4"}
    assert values(child.labels) == {"x": "1"}
    assert values(child.build_args) == {"P": "1", "Q": "9"}
    assert child.removed == frozenset({Removal("env", "A"), Removal("labels", "y")})


def test_requirements_merge_by_normalised_name_child_specifier_wins(project) -> None:
    _, child, _ = two(project, "    requirements: [Scikit_Learn==1.4, numpy==1.26]",
                      "    requirements: [scikit-learn>=1.5]")
    assert values(child.requirements) == {"numpy": "numpy==1.26", "scikit-learn": "scikit-learn>=1.5"}


def test_apt_packages_are_a_union_and_a_child_pin_wins(project) -> None:
    _, child, _ = two(project, "    apt_packages: [git, curl]", "    apt_packages: [curl=7.88, jq]")
    assert values(child.apt) == {"curl": "curl=7.88", "git": "git", "jq": "jq"}


def test_integration_below_own_values_and_order_is_kept(project) -> None:
    c = compiled(project, """integrations:
  one: {requirements: [a==1], env: {X: one}}
  two: {requirements: [a==2], env: {X: two}}
environments:
  e:
    python: "3.11"
    integrations: [one, two]
    requirements: [a==3]
runner: {environment: e}
""")
    env = c.plan.environments["e"]
    assert values(env.requirements) == {"a": "a==3"}
    assert values(env.env) == {"X": "two"}
    assert env.env["X"].origin.via == ("integration two",)


def test_lists_append_without_repeats_in_a_fixed_order(project) -> None:
    _, child, _ = two(project, "    run: [a, b]\n    checks: [x]", "    run: [b, c]\n    checks: [y, x]")
    assert [r.value for r in child.run] == ["a", "b", "c"]
    assert [r.value for r in child.checks] == ["x", "y"]


def test_step_settings_derive_from_the_step_environment(project) -> None:
    c = compiled(project, """environments:
  base: {python: "3.11", requirements: [a==1]}
  other: {python: "3.11", requirements: [b==1]}
runner: {environment: base}
pipelines:
  p:
    environment: base
    steps:
      s: {environment: other, settings: {requirements: [c==1]}}
""")
    env = c.plan.environments["p.s"]
    assert env.parent == "other" and env.kind == "step"
    assert values(env.requirements) == {"b": "b==1", "c": "c==1"}
    assert c.manifest.pipelines["p"].steps["s"] == StepRecord(after=(), environment="p.s", image="p.s")
    assert c.plan.images["p.s"].parent == "other"


def test_layering_keeps_parent_base_installer_and_user(project) -> None:
    _, _, c = two(project, "    user: app", "    requirements: [a==1]")
    child = c.plan.images["child"]
    assert child.parent == "parent" and child.spec.layered
    assert child.from_ref == c.plan.images["parent"].tag


def test_other_base_installer_or_user_renders_whole(project) -> None:
    for change in ("    python: '3.12'", "    installer: uv", "    user: other", "    env: {A: null}"):
        _, _, c = two(project, "    user: app\n    env: {A: '1'}", change + "\n    requirements: [a==1]")
        image = c.plan.images["child"]
        assert image.parent is None and not image.spec.layered, change
        assert image.from_ref.startswith("python:3.1"), change


def test_identical_environments_are_one_image(project) -> None:
    c = compiled(project, """environments:
  a: {python: "3.11", requirements: [x==1], checks: [one]}
  b: {python: "3.11", requirements: [x==1], checks: [two]}
runner: {environment: a}
server: {environment: b}
""")
    assert c.plan.env_image == {"a": "a", "b": "a"}
    assert c.plan.images["a"].environments == ("a", "b")
    assert c.plan.images["a"].checks == ("one", "two")
    assert sorted(c.files) == ["images/a/Dockerfile", "images/a/requirements.txt", "manifest.json"]


def test_a_child_that_adds_nothing_is_its_parents_image(project) -> None:
    _, _, c = two(project, "    requirements: [a==1]", "    checks: [x]")
    assert c.plan.env_image["child"] == "parent"


# -- certificates, index URLs, builder proxies -----------------------------------------------------

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CERTS = {f"certs/{n}.pem": PEM for n in ("a", "b", "c", "d")}


def with_certs(project, body: str):
    root = project({"dockwright.yaml": "version: 1\nproject: t\n" + body, **CERTS})
    return compile_project(Path(root) / "dockwright.yaml")


def test_certificates_are_a_union_in_path_order_through_extends_integrations_and_settings(project) -> None:
    c = with_certs(project, """integrations:
  corp: {certificates: [certs/c.pem]}
environments:
  parent: {python: "3.11", certificates: [certs/b.pem]}
  child: {extends: parent, integrations: [corp], certificates: [./certs/a.pem, certs/b.pem]}
runner: {environment: child, settings: {certificates: [certs/d.pem, certs/a.pem]}}
""")
    envs = c.plan.environments
    assert list(envs["parent"].certificates) == ["certs/b.pem"]
    assert sorted(envs["child"].certificates) == ["certs/a.pem", "certs/b.pem", "certs/c.pem"]
    assert envs["child"].certificates["certs/c.pem"].origin.via == ("integration corp",)
    spec = c.plan.images["runner.settings"].spec
    assert [src for src, _ in spec.certificates] == ["certs/a.pem", "certs/b.pem", "certs/c.pem", "certs/d.pem"]
    assert spec.certificates[0] == ("certs/a.pem", "/opt/dockwright/certs/certs/a.pem")


def test_index_url_child_wins_and_extra_index_urls_append_once_in_order(project) -> None:
    c = compiled(project, """integrations:
  one: {index_url: "https://one.example/simple", extra_index_urls: ["https://x.example/simple"]}
  two: {index_url: "https://two.example/simple", extra_index_urls: ["https://y.example/simple"]}
environments:
  parent:
    python: "3.11"
    requirements: [a==1]
    index_url: https://parent.example/simple
    extra_index_urls: ["https://y.example/simple", "https://p.example/simple"]
  child:
    extends: parent
    integrations: [one, two]
    extra_index_urls: ["https://p.example/simple", "https://z.example/simple"]
  own:
    extends: parent
    integrations: [two]
    index_url: https://own.example/simple
runner: {environment: child}
server: {environment: own, settings: {index_url: "https://settings.example/simple"}}
""")
    envs = c.plan.environments
    assert envs["child"].index_url.value == "https://two.example/simple"
    assert envs["child"].index_url.origin.via == ("integration two",)
    assert [u.value for u in envs["child"].extra_index_urls] == [
        "https://y.example/simple", "https://p.example/simple", "https://x.example/simple", "https://z.example/simple"]
    assert envs["own"].index_url.value == "https://own.example/simple"
    assert envs["server.settings"].index_url.value == "https://settings.example/simple"


def test_index_flags_come_before_installer_args_for_pip_and_for_uv_and_its_bootstrap(project) -> None:
    c = compiled(project, """environments:
  p:
    python: "3.11"
    requirements: [a==1]
    installer_args: [--pre]
    index_url: https://m.example/simple
    extra_index_urls: ["https://e.example/s?a=1&b=2"]
  u: {extends: p, installer: uv}
runner: {environment: p}
server: {environment: u}
""")
    flags = "--index-url https://m.example/simple --extra-index-url 'https://e.example/s?a=1&b=2'"
    pip = c.files["images/p/Dockerfile"]
    assert f"--disable-pip-version-check {flags} --pre -r /opt/dockwright/requirements.txt" in pip
    uv = c.files["images/u/Dockerfile"]
    assert f"--disable-pip-version-check {flags} uv==" in uv
    assert f"--no-cache {flags} --pre -r /opt/dockwright/requirements.txt" in uv


def test_index_urls_say_nothing_without_requirements(project) -> None:
    c = compiled(project, """environments:
  a: {python: "3.11", index_url: "https://m.example/simple", env: {X: "1"}}
  b: {python: "3.11", env: {X: "1"}}
runner: {environment: a}
server: {environment: b}
""")
    assert c.plan.env_image == {"a": "a", "b": "a"}
    assert "index-url" not in c.files["images/a/Dockerfile"]


def test_the_certificate_bundle_comes_after_apt_and_before_every_python_step(project) -> None:
    c = with_certs(project, """environments:
  e: {python: "3.11", installer: uv, apt_packages: [git], certificates: [certs/a.pem], requirements: [a==1]}
runner: {environment: e}
""")
    text = c.files["images/e/Dockerfile"]
    order = ["apt-get install", "COPY certs/a.pem", "> /opt/dockwright/ca-certificates.crt",
             "ENV PIP_CERT=/opt/dockwright/ca-certificates.crt", "python3 -m venv --system-site-packages",
             "python3 -m venv /opt/dockwright/uv"]
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    assert "REQUESTS_CA_BUNDLE=/opt/dockwright/ca-certificates.crt" in text
    assert "SSL_CERT_FILE=/opt/dockwright/ca-certificates.crt" in text


def test_same_certificates_layer_other_certificates_render_whole(project) -> None:
    c = with_certs(project, """environments:
  parent: {python: "3.11", certificates: [certs/a.pem], requirements: [a==1], user: app}
  same: {extends: parent, requirements: [b==1], extra_index_urls: ["https://e.example/simple"]}
  more: {extends: parent, certificates: [certs/b.pem]}
  none: {extends: parent}
runner: {environment: same}
server: {environment: more}
pipelines:
  p: {environment: none, steps: {s: {settings: {certificates: [certs/c.pem]}}}}
""")
    images = c.plan.images
    assert images["same"].parent == "parent" and images["same"].spec.certificates == ()
    assert "--extra-index-url https://e.example/simple" in c.files["images/same/Dockerfile"]
    assert "certs/" not in c.files["images/same/Dockerfile"]
    assert images["same"].inputs == ("generated/images/same/Dockerfile", "generated/images/same/requirements.txt")
    assert c.plan.env_image["none"] == "parent"
    for name, parent in (("more", "parent"), ("p.s", "none")):
        assert images[name].parent is None and not images[name].spec.layered, name
        assert images[name].layering == f"rendered whole (other certificates than '{parent}')"
    assert [src for src, _ in images["more"].spec.certificates] == ["certs/a.pem", "certs/b.pem"]
    assert images["more"].inputs == ("generated/images/more/Dockerfile", "generated/images/more/requirements.txt",
                                     "certs/a.pem", "certs/b.pem")
    assert c.manifest.inputs == ("certs/a.pem", "certs/b.pem", "certs/c.pem")
    assert c.manifest.images["more"].inputs[-2:] == ("certs/a.pem", "certs/b.pem")


def test_certificates_take_part_in_dedupe(project) -> None:
    c = with_certs(project, """environments:
  a: {python: "3.11", certificates: [certs/a.pem]}
  b: {python: "3.11", certificates: [./certs/a.pem]}
  c: {python: "3.11", certificates: [certs/b.pem]}
runner: {environment: a}
server: {environment: b}
pipelines:
  p: {environment: c, steps: {s: {}}}
""")
    assert c.plan.env_image == {"a": "a", "b": "a", "c": "c"}


def test_builder_proxy_reaches_the_manifest_sorted_and_unexpanded_and_no_dockerfile(project) -> None:
    c = compiled(project, """environments:
  e: {python: "3.11", requirements: [a==1]}
runner: {environment: e}
builders:
  local:
    type: docker
    proxy: {no_proxy: "localhost,.corp", https: "http://${U}:${P}@proxy:3128", http: "http://proxy:3128"}
  other: {type: docker}
""")
    builders = c.manifest.builders
    assert list(builders["local"].proxy) == ["http", "https", "no_proxy"]
    assert builders["local"].proxy["https"] == "http://${U}:${P}@proxy:3128"
    assert builders["other"].proxy == {}
    assert c.project.builders["local"].proxy == (("http", "http://proxy:3128"),
                                                 ("https", "http://${U}:${P}@proxy:3128"),
                                                 ("no_proxy", "localhost,.corp"))
    assert not any("proxy" in text.lower() for path, text in c.files.items() if path.endswith("Dockerfile"))


def test_default_builder_has_an_empty_proxy(project) -> None:
    c = compiled(project, "environments:\n  e: {python: '3.11'}\nrunner: {environment: e}\n")
    assert c.manifest.as_data()["builders"] == {"local": {"proxy": {}, "tls": {}, "type": "docker", "url": None}}


# The list fields whose exact repeats are allowed (no `repeat` name: not an error) and kept once.
_KEPT_ONCE = {"requirements_files": ("reqs.txt", "reqs.txt"), "integrations": ("i", "i"), "run": ("echo a", "echo a"),
              "checks": ("python -V", "python -V"), "copy": ("src", "{from: src}")}


def test_every_list_that_keeps_repeats_once_is_covered() -> None:
    from compiler.fields import FIELDS, Merge, Read
    assert {f.name for f in FIELDS if f.merge is Merge.APPEND and f.repeat is None
            and f.read in (Read.LIST, Read.COPY)} == set(_KEPT_ONCE)


def test_a_repeat_in_one_list_is_a_located_warning_and_kept_once(project) -> None:
    from helpers import invoke
    lists = "\n".join(f"    {key}: [{a}, {b}]" for key, (a, b) in _KEPT_ONCE.items())
    root = project({
        "reqs.txt": "six\n", "src/x": "",
        "dockwright.yaml": "version: 1\nproject: t\nintegrations:\n  i: {env: {A: '1'}}\nenvironments:\n  base:\n"
                           "    python: '3.11'\n" + lists + "\nrunner: {environment: base}\npipelines:\n  p:\n"
                           "    environment: base\n    steps:\n      a: {}\n      b: {after: [a, a]}\n"})
    result = invoke("compile", cwd=root)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if ": warning: " in line]
    assert warnings == [
        "dockwright.yaml:8:36: warning: 'reqs.txt' is listed twice in 'requirements_files' of environment 'base'; "
        "kept once (first at line 8; remove one)",
        "dockwright.yaml:9:23: warning: 'i' is listed twice in 'integrations' of environment 'base'; kept once "
        "(first at line 9; remove one)",
        "dockwright.yaml:10:19: warning: 'echo a' is listed twice in 'run' of environment 'base'; kept once "
        "(first at line 10; remove one)",
        "dockwright.yaml:11:25: warning: 'python -V' is listed twice in 'checks' of environment 'base'; kept once "
        "(first at line 11; remove one)",
        "dockwright.yaml:12:17: warning: 'src' is listed twice in 'copy' of environment 'base'; kept once "
        "(first at line 12; remove one)",
        "dockwright.yaml:19:22: warning: 'a' is listed twice in 'after' of step 'b' in pipeline 'p'; kept once "
        "(first at line 19; remove one)",
    ]
    manifest = (root / "generated" / "manifest.json").read_text(encoding="utf-8")
    assert '"after": [\n            "a"\n          ]' in manifest
    dockerfile = (root / "generated" / "images" / "base" / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.count("echo a") == 1 and dockerfile.count("COPY src/ /src/") == 1


def test_explain_says_a_value_the_parent_does_not_set_in_words(project) -> None:
    from helpers import invoke
    root = project({"dockwright.yaml": "version: 1\nproject: t\nenvironments:\n  base: {python: '3.11'}\n"
                                       "  app: {extends: base, user: app}\nrunner: {environment: app}\n"})
    result = invoke("explain", "app", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "  rendered whole (user app, not set in 'base')\n" in result.stdout


_PYTHON_WORDS = re.compile(r"\b(None|True|False)\b|\(\)|\[\]")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([f for f in FIELDS if f.match]), st.one_of(st.none(), st.text("abcuvpi-", min_size=1)),
       st.one_of(st.none(), st.text("abcuvpi-", min_size=1)), st.text("abc", min_size=1))
def test_every_layering_reason_is_said_in_words(field, mine, theirs, name) -> None:
    """Each field's reason why a child renders whole, whatever the two values are (set or not): no Python
    literal (None, True, False, (), []) reaches the user."""
    from compiler.plan import _differs
    assume(mine != theirs)
    reason = _differs(field.match, field.label, mine, theirs, name)
    assert not _PYTHON_WORDS.search(reason), reason
    assert f"'{name}'" in reason
