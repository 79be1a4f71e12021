"""The `zenml:` section's checks: every image ZenML runs can run ZenML steps. Pure: the plan in, diagnostics out.

What each image needs was learned from ZenML's local Docker orchestrator (README, "ZenML"): zenml at exactly the
client's version (another version fails the database migration check), its `local` extra for the SQL store a
step writes to when the store is local, `python` on PATH (`python -m zenml.entrypoints.entrypoint`), the same
Python as the client, and, for a user other than root, a writable ZENML_CONFIG_PATH and working directory.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from packaging.requirements import InvalidRequirement, Requirement

from .errors import Collector, Location
from .lock import PYTHON_IMAGE, ZENML_IMAGE, python_of as image_python
from .model import Environment, Project, ZenML
from .plan import Plan, is_root

LOCAL_EXTRAS = frozenset({"local", "server"})  # `server` pulls in `local` (zenml's own metadata)
# A released version as ZenML's client reports it (`zenml version`): 0.98.0, 0.98.0rc1, 0.98.0.post1.
VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?")
_WRITABLE = ("/tmp",)  # world-writable in every Debian image


class _Once:
    """Reports each problem once: an image derived from an environment (a step's settings, `extends`) inherits
    its requirement, base, user and env, and so their places; the first (an environment) names it."""

    def __init__(self, sink: Collector) -> None:
        self.sink = sink
        self.seen: set[tuple[str, Location | None]] = set()

    def first(self, tag: str, at: Location | None) -> bool:
        if (tag, at) in self.seen:
            return False
        self.seen.add((tag, at))
        return True

    def error(self, tag: str, at: Location | None, message: str, hint: str) -> None:
        if self.first(tag, at):
            self.sink.error(at, message, hint)

    def warn(self, tag: str, at: Location | None, message: str, hint: str) -> None:
        if self.first(tag, at):
            self.sink.warn(at, message, hint)


@dataclass(frozen=True)
class _Use:
    """An environment ZenML runs, and who runs it in (`the runner`, `pipeline 'p'`, `step 'p.s'`)."""

    env: Environment
    image: str | None
    users: tuple[str, ...]
    steps: bool  # a pipeline or a step runs in it (not only the runner)


def _uses(project: Project, the_plan: Plan, in_images: bool) -> list[_Use]:
    users: dict[str, list[str]] = {}
    runner = project.runner
    if runner is not None:
        users.setdefault(runner.settings.name if runner.settings is not None else runner.environment.value,
                         []).append("the runner")
    if in_images:
        for pipe in project.pipelines.values():
            if pipe.environment is not None:
                users.setdefault(pipe.environment.value, []).append(f"pipeline '{pipe.name}'")
            for step in pipe.steps:
                name = step.settings.name if step.settings is not None else (
                    step.environment.value if step.environment is not None else None)
                if name is not None:
                    users.setdefault(name, []).append(f"step '{pipe.name}.{step.name}'")
    out = []
    for name, who in sorted(users.items(), key=lambda item: (the_plan.environments[item[0]].kind != "environment",
                                                             item[0]) if item[0] in the_plan.environments else
                            (True, item[0])):
        env = the_plan.environments.get(name)
        if env is not None:
            out.append(_Use(env, the_plan.env_image.get(name), tuple(who), who != ["the runner"]))
    return out


def lacks_zenml(image: str) -> bool:
    """An official `python` image: compile knows it has no zenml (a requirement must install it)."""
    return PYTHON_IMAGE.fullmatch(image) is not None


def _broken(env: Environment, the_plan: Plan, project: Project) -> bool:
    """Whether env, an environment it extends, or an integration they list has schema errors, or names an
    integration there is none of (each reported): what it installs is not known."""
    broken = project.broken
    seen: set[str] = set()
    current: Environment | None = env
    while current is not None and current.name not in seen:
        seen.add(current.name)
        entry = ("pipelines", current.name.split(".")[0]) if current.kind == "settings" else \
            ("environments", current.name)
        if entry in broken or any(("integrations", i.value) in broken or i.value not in project.integrations
                                  for i in current.integrations):
            return True
        current = the_plan.environments.get(current.parent) if current.parent is not None else None
    return False


def _what(use: _Use) -> str:
    who = ", ".join(use.users[:3]) + (f" and {len(use.users) - 3} more" if len(use.users) > 3 else "")
    if use.env.kind == "environment":
        return f"environment '{use.env.name}' (used by {who})"
    return f"the image of {who}"


def _exact(req: Requirement) -> str | None:
    """The one version a requirement allows (`==0.98.0`, `===0.98.0`), else None."""
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _locked(the_plan: Plan, image: str | None) -> str | None:
    """The zenml version dockwright.lock pins in the image or the images it is built on."""
    seen: set[str] = set()
    while the_plan.lock is not None and image is not None and image not in seen:
        seen.add(image)
        entry = the_plan.lock.images.get(image)
        for pkg in entry.packages if entry is not None else ():
            if pkg.name == "zenml":
                return pkg.version
        found = the_plan.images.get(image)
        image = found.parent if found is not None else None
    return None


def python_of(env: Environment, the_plan: Plan, image: str | None) -> str | None:
    """The Python minor version an environment's image runs, when compile knows it."""
    base = env.base.value if env.base is not None else None
    if base is not None and base.python is not None:
        return base.python
    named = image_python(base.image) if base is not None and base.image else None
    if named is not None:
        return named
    entry = the_plan.lock.images.get(image) if the_plan.lock is not None and image is not None else None
    return entry.python if entry is not None else None


def _at(env: Environment) -> Location | None:
    return env.base.origin.location if env.base is not None and env.base.origin.location else env.location


def _root(env: Environment, the_plan: Plan) -> Location | None:
    """Where the environment an image's chain starts from is defined (what a missing requirement is missing from)."""
    seen = {env.name}
    while env.parent is not None and env.parent in the_plan.environments and env.parent not in seen:
        env = the_plan.environments[env.parent]
        seen.add(env.name)
    return env.location


def _fix(version: str) -> str:
    return f"add \"zenml[local]=={version}\" to its requirements or to an integration it lists"


def _check_version(use: _Use, version: str, the_plan: Plan, sink: _Once) -> None:
    """zenml at exactly the project's version: a requirement (with the lock's pin), or ZenML's own image."""
    env, what = use.env, _what(use)
    req = env.requirements.get("zenml")
    if req is None:
        _check_parent(use, version, the_plan, sink)
        return
    try:
        parsed = Requirement(req.value)
    except InvalidRequirement:
        return  # reported where it is written
    pinned = _exact(parsed) or _locked(the_plan, use.image)
    at = req.origin.location
    if pinned is None:
        sink.error("version", at, f"requirement '{req.value}' of {what} does not pin zenml to one version; the "
                   f"project runs ZenML {version} (zenml.version)",
                   f"write \"zenml[local]=={version}\": another version fails ZenML's database migration check")
    elif pinned != version:
        sink.error("version", at,
                   f"{what} installs zenml {pinned}, but the project runs ZenML {version} (zenml.version)",
                   f"write \"zenml[local]=={version}\", or change zenml.version: the client's and the steps' "
                   "versions must be the same")
    if not parsed.extras & LOCAL_EXTRAS:
        sink.warn("extra", at, f"requirement '{req.value}' of {what} has no 'local' extra: without it zenml has no "
                  "SQL store, so its steps cannot use a local ZenML store (the local Docker orchestrator's)",
                  f"write \"zenml[local]=={version}\"; plain zenml is enough only with a ZenML server")


def _check_parent(use: _Use, version: str, the_plan: Plan, sink: _Once) -> None:
    env, what = use.env, _what(use)
    base = env.base.value if env.base is not None else None
    image = base.image if base is not None else None
    zenml_image = ZENML_IMAGE.fullmatch(image) if image else None
    if zenml_image is not None:
        if zenml_image.group("version") != version:
            sink.error("version", _at(env), f"parent image '{image}' of {what} has zenml "
                       f"{zenml_image.group('version')}, but the project runs ZenML {version} (zenml.version)",
                       f"use zenmldocker/zenml:{version}-py{zenml_image.group('python')}, or {_fix(version)}")
        return
    if base is None or (base.dockerfile is None and image is not None and PYTHON_IMAGE.fullmatch(image)):
        sink.error("version", _root(env, the_plan),
                   f"{what} has no zenml; the project runs ZenML {version} (zenml.version)", _fix(version))
        return
    python = "" if base.python is not None else ", nor that it has `python` on PATH (ZenML runs steps with " \
                                                "`python -m zenml.entrypoints.entrypoint`)"
    kind = f"custom parent Dockerfile '{base.dockerfile}'" if base.dockerfile else f"parent image '{image}'"
    sink.warn("version", _at(env), f"compile cannot tell whether the {kind} of {what} has zenml {version}{python}",
              f"{_fix(version)}: pip installs nothing when the parent has it, and dockwright's venv puts `python` "
              "on PATH")


def _user(use: _Use, the_plan: Plan) -> str | None:
    image = the_plan.images.get(use.image) if use.image is not None else None
    if image is not None and image.runs_as is not None:
        return image.runs_as
    return use.env.user.value if use.env.user is not None else None


def _under(path: str, folder: str) -> bool:
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _check_writable(use: _Use, the_plan: Plan, sink: _Once) -> None:
    """A user other than root needs a ZENML_CONFIG_PATH and a working directory it can write."""
    env, what = use.env, _what(use)
    user = _user(use, the_plan)
    if user is None or is_root(user):
        return
    at = env.user.origin.location if env.user is not None else env.location
    workdir = env.workdir.value if env.workdir is not None else None
    config = env.env.get("ZENML_CONFIG_PATH")
    suggested = posixpath.join(workdir or "/app", ".zenml")
    if config is None:
        sink.warn("config", at, f"{what} runs as user '{user}' but sets no ZENML_CONFIG_PATH: ZenML writes its "
                  "configuration to ~/.config/zenml, which a user without a home (or another uid, as the local Docker "
                  "orchestrator runs steps) cannot write",
                  f"set env: {{ZENML_CONFIG_PATH: {suggested}}}, under the workdir, which dockwright makes "
                  f"writable for user '{user}'" if workdir is not None else
                  f"set workdir: /app and env: {{ZENML_CONFIG_PATH: {suggested}}}: dockwright makes the workdir "
                  f"writable for user '{user}'")
    elif "$" not in config.value and not any(_under(config.value, d) for d in (*_WRITABLE, workdir or "/tmp")):
        sink.warn("config", config.origin.location, f"ZENML_CONFIG_PATH '{config.value}' of {what} is not under its "
                  f"workdir ({workdir or 'none set'}), the one directory dockwright makes writable for user '{user}'",
                  f"set it to {suggested}")
    if use.steps and workdir is None:
        sink.warn("workdir", at, f"{what} runs as user '{user}' but sets no workdir: ZenML's steps write to their "
                  "working directory", f"set workdir: /app; dockwright makes it writable for user '{user}'")


def _check_python(uses: list[_Use], the_plan: Plan, sink: _Once) -> None:
    """ZenML's client (the runner) and the step environments must run the same Python."""
    runner = next((u for u in uses if "the runner" in u.users), None)
    client = python_of(runner.env, the_plan, runner.image) if runner is not None else None
    if runner is None or client is None:
        return
    for use in uses:
        python = python_of(use.env, the_plan, use.image)
        if use.steps and python is not None and python != client:
            sink.warn("python", _at(use.env),
                      f"{_what(use)} runs Python {python}, but the runner runs Python {client}: ZenML's client and "
                      "step environments must agree",
                      f"use Python {client} here, or the same Python in the runner's environment "
                      f"'{runner.env.name}'")


def check(project: Project, the_plan: Plan, sink: Collector) -> None:
    """Located errors and warnings, each with its fix, when the project's images cannot run its ZenML."""
    section: ZenML | None = project.zenml
    if section is None:
        return
    if not VERSION.fullmatch(section.version.value):
        sink.error(section.version.origin.location, f"zenml.version '{section.version.value}' is not a ZenML version",
                   "write the exact version your ZenML client runs, as `zenml version` prints it, like \"0.98.0\"")
        return
    # An entry with schema errors is an empty stand-in: its images would look as if they had no zenml.
    uses = [u for u in _uses(project, the_plan, section.in_images) if not _broken(u.env, the_plan, project)]
    once = _Once(sink)
    for use in uses:
        _check_version(use, section.version.value, the_plan, once)
        _check_writable(use, the_plan, once)
    _check_python(uses, the_plan, once)


__all__ = ["check", "lacks_zenml", "python_of", "LOCAL_EXTRAS"]
