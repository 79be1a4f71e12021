"""Each merge and layering rule of DESIGN.md, pinned on small in-memory projects."""

from __future__ import annotations

from pathlib import Path

from compiler.pipeline import compile_project


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
    assert child.removed == frozenset({"env:A", "labels:y"})


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
    assert c.manifest["pipelines"]["p"]["steps"]["s"] == {"after": [], "environment": "p.s", "image": "p.s"}
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
