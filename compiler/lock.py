"""`dockwright lock`: what to lock for each image of the plan, the offline inputs check, and the run that
resolves (uv, in parallel threads) and asks registries for digests, then writes dockwright.lock.

Takes the Plan (not the pipeline's Compiled), so that compile can call `stale` offline later.
Library code: returns results or raises ConfigError / UsageError; the CLI prints and exits.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from packaging.utils import canonicalize_name

from . import lockfile, record, resolve
from .errors import ConfigError, Diagnostic, Location, UsageError, read_inside, shown_path
from .lockfile import File, Lock, LockedImage, Package, Parent
from .model import Base, Environment
from .plan import ImageSpec, Plan

if TYPE_CHECKING:
    from . import registry
# compile imports this module for `stale` (offline): the network modules (registry: urllib, http.client, ssl)
# and the thread pool are imported by the run that uses them.

DEFAULT_PLATFORMS = ("linux/amd64",)
# Parents whose Python version their name says: the official python images, and ZenML's own
# (`zenmldocker/zenml:0.98.0-py3.11`: zenml at the tag's version, that Python).
PYTHON_IMAGE = re.compile(r"(?:(?:docker\.io|index\.docker\.io)/)?(?:library/)?python:(?P<python>3\.[0-9]{1,2})"
                          r"(?:\.[0-9]+)?(?:[-.][A-Za-z0-9._-]*)?(?:@sha256:[0-9a-f]{64})?")
ZENML_IMAGE = re.compile(r"(?:(?:docker\.io|index\.docker\.io)/)?zenmldocker/zenml:(?P<version>[0-9][A-Za-z0-9.+]*)"
                         r"-py(?P<python>3\.[0-9]{1,2})(?:@sha256:[0-9a-f]{64})?")
_NEXT = "state it with `python: \"X.Y\"` beside `parent_image:`/`dockerfile:`"


@dataclass(frozen=True)
class Target:
    """What one image needs locked, taken from the plan."""

    name: str
    location: Location | None  # the environment's definition
    base_location: Location | None  # where its base (python / parent_image / dockerfile) is written
    python: str | None
    python_problem: str | None  # why the Python version is unknown, when it is
    platforms: tuple[str, ...]
    requirements: tuple[str, ...]
    origins: Mapping[str, tuple[str, Location | None, bool]]  # name -> (requirement, where, written here)
    index_url: str | None
    extra_index_urls: tuple[str, ...]
    installer_args: tuple[str, ...]
    certificates: tuple[str, ...]  # the PEM text of the environment's CA files, read inside the project
    layered_on: str | None  # a generated parent image whose pins constrain this one
    external: str | None  # an external parent image reference, locked by digest
    # the image's own packages (local_packages): (project path, its build files' digest, absolute path);
    # their dependencies are locked with the requirements, the packages themselves install --no-deps
    local_packages: tuple[tuple[str, str, str], ...] = ()

    @property
    def installs(self) -> bool:
        """Whether the image installs Python packages (and so needs a Python version and a resolution)."""
        return bool(self.requirements or self.local_packages)


# A registry out of reach (a firewall, an air-gapped CI runner) need not block pinning the packages.
_SKIP_PARENTS_HINT = ("or `dockwright lock --skip-parents` to lock the Python packages now; parents stay unpinned, "
                      "each named by a warning, until a lock with the registry in reach pins them")

def python_of(image: str | None) -> str | None:
    """The Python version an image reference names: an official python image (`python:3.11-slim` -> 3.11) or
    ZenML's (`zenmldocker/zenml:0.98.0-py3.11` -> 3.11); None for any other."""
    m = PYTHON_IMAGE.fullmatch(image or "") or ZENML_IMAGE.fullmatch(image or "")
    return m.group("python") if m else None


def _python_problem(base: Base | None, python: str | None) -> str | None:
    """Why the Python version of an image on this base is unknown, when it is."""
    if python is not None or base is None:
        return None
    if base.image:
        return f"the Python version of parent image '{base.image}' is not known"
    return f"the Python version of the image built from '{base.dockerfile}' is not known"


def targets(plan: Plan, root: Path, platforms: tuple[str, ...]) -> dict[str, Target]:
    """What each image of the plan needs locked (root: the project root, for certificate files)."""
    # An image with no spec is a custom parent built from the user's own Dockerfile: its FROM is theirs.
    out: dict[str, Target] = {}
    for name, img in sorted(plan.images.items()):
        if img.spec is not None:
            out[name] = _target(plan, name, img.spec, root, platforms)
    return out


def _target(plan: Plan, name: str, spec: ImageSpec, root: Path, platforms: tuple[str, ...]) -> Target:
    img = plan.images[name]
    env = plan.environments.get(name) or plan.environments[img.environments[0]]
    base = env.base.value if env.base is not None else None
    parent = plan.images.get(img.parent) if img.parent else None
    python = (base.python or python_of(base.image)) if base is not None else None
    return Target(
        name=name, location=env.location, base_location=env.base.origin.location if env.base else None,
        python=python, python_problem=_python_problem(base, python), platforms=platforms,
        requirements=img.requirements,
        origins={key: (req.value, req.origin.location, not req.origin.via) for key, req in env.requirements.items()},
        index_url=spec.index_url, extra_index_urls=spec.extra_index_urls, installer_args=spec.installer_args,
        certificates=tuple(read_inside(root / c, root).decode("utf-8", errors="replace")
                           for c in sorted(env.certificates)),
        layered_on=parent.name if parent is not None and parent.generated and spec.layered else None,
        external=img.base_ref if parent is None and img.base_ref else None,
        local_packages=_local_packages(root, env),
    )


def _local_packages(root: Path, env: Environment) -> tuple[tuple[str, str, str], ...]:
    """Every local package of the environment, its parent's too: an image layered on a parent installs only
    its own, yet its entry says all it holds (as its requirements repeat the parent's), and the parent's
    packages are among the pins the parent's entry holds it to."""
    return tuple((item.value, _build_files_digest(root, item.value), str(root.resolve() / item.value))
                 for item in env.local_packages)


def _build_files_digest(root: Path, src: str) -> str:
    """The digest of a local package's build files: a change to its declared dependencies makes the lock
    stale, offline (compile checked that the directory is inside the project and holds one of them)."""
    found = {}
    for name in record.PACKAGE_FILES:  # uv reads the dependencies from them (building the metadata if dynamic)
        path = root / src / name
        if path.is_file() or path.is_symlink():
            found[name] = read_inside(path, root).decode("utf-8", errors="replace")
    return lockfile.digest(found)


def inputs_digest(t: Target, parent: LockedImage | None) -> str:
    """Everything that changes what `lock` writes for t: compared offline against the lock."""
    data: dict[str, object] = {
        "format": lockfile.FORMAT, "python": t.python, "platforms": list(t.platforms),
        "target": resolve.MANYLINUX, "requirements": sorted(t.requirements), "index_url": t.index_url,
        "extra_index_urls": list(t.extra_index_urls), "args": list(resolve.resolution_args(t.installer_args)),
        "from": t.external,
        "parent": None if parent is None else {p: sorted(parent.pins(p).items()) for p in parent.platforms},
    }
    if t.local_packages:  # only then: the digests of locks written before local packages were resolved hold
        data["local_packages"] = [[path, digest] for path, digest, _ in t.local_packages]
    return lockfile.digest(data)


def stale(plan: Plan, root: Path, lock: Lock, platforms: tuple[str, ...] | None = None) -> list[str]:
    """Images whose lock entry is missing or no longer matches the YAML (offline, no uv, no network).

    platforms: None takes the project's `platforms:`.
    """
    if platforms is None:
        platforms = plan.project.platforms
    out = []
    for name, t in targets(plan, root, platforms).items():
        entry = lock.images.get(name)
        parent = lock.images.get(t.layered_on) if t.layered_on else None
        if entry is None or entry.inputs != inputs_digest(t, parent) or (
                t.external is not None and (entry.parent is None or entry.parent.ref != t.external)):
            out.append(name)
    return out


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Result:
    path: Path
    old: str | None
    new: str
    changes: list[str] = field(default_factory=list)  # one line per changed pin or digest
    resolved: list[str] = field(default_factory=list)  # images resolved again (not reused)
    images: int = 0  # images in the lock
    unreadable: Diagnostic | None = None  # why the old lock could not be read (it is written anew)

    @property
    def changed(self) -> bool:
        return self.old != self.new


def _names(text: str, names: list[str]) -> list[str]:
    low = text.lower()
    found = []
    for name in names:
        spelled = re.escape(name).replace(r"\-", "[-_.]")
        if re.search(rf"(?<![\w.-]){spelled}(?![\w-])", low):
            found.append(name)
    return found


def _first_line(line: str) -> str:
    """uv's first line as the end of our message: no trailing colon, lower-case first letter."""
    head = line.rstrip(":").strip()
    return head[:1].lower() + head[1:]


def _by_place(origin: tuple[str, Location | None, bool]) -> tuple[bool, str, int]:
    loc = origin[1]
    return (loc is None, str(loc.file) if loc else "", loc.line if loc else 0)


def _resolve_hint(text: str, parent: LockedImage | None, platform: str) -> str | None:
    """What to do about uv's explanation: a clash with the parent's pins, a private CA, a refusing index."""
    if parent is not None:
        pins = parent.pins(platform)
        clash = _names(text, sorted(pins))
        if clash:
            shown = ", ".join(f"{n} {pins[n]}" for n in clash)
            return (f"it conflicts with the pins of image '{parent.name}' ({shown}), which this image is built on; "
                    "move the pin to the parent environment, or stop layering this environment on it")
    low = text.lower()
    if "certificate" in low:
        return "if the index's certificate is signed by a private CA, list that CA in the environment's `certificates:`"
    if "401 unauthorized" in low or "403 forbidden" in low:
        return ("give uv this machine's credentials for the index, e.g. in ~/.netrc; they are never written "
                "into the lock or the image")
    return None


def _resolve_error(t: Target, platforms: list[str], err: resolve.ResolveError,
                   parent: LockedImage | None) -> Diagnostic:
    """uv's explanation, at the requirement it names (the image's own before inherited ones), with a note
    at each requirement it mentions."""
    lines = err.text.split("\n")
    notes: list[tuple[str, Location | None]] = [(re.sub(r"^cause:\s*", "", line.strip()), None)
                                                for line in lines[1:] if line.strip()]
    where = [t.origins[n] for n in _names(err.text, sorted(t.origins))]
    notes += [(f"'{req}' is asked for here", loc) for req, loc, _ in sorted(where, key=_by_place)]
    own = [w for w in where if w[2]] or where
    location = (own[0][1] or t.location) if own else t.location
    return Diagnostic(None if err.missing_uv else location,
                      f"cannot lock image '{t.name}' for {', '.join(platforms)}: {_first_line(lines[0])}",
                      _resolve_hint(err.text, parent, platforms[0]), notes=tuple(notes))


def _package_set(t: Target, results: dict[str, resolve.Resolution]) -> tuple[Package, ...]:
    """Merge per-platform resolutions into packages: platform lists only where they differ."""
    direct = {key: t.origins[key][0] for key in t.origins}
    written = {where: path for path, _, where in t.local_packages}
    for res in results.values():  # a local package's dependencies are pulled in by the package, as listed
        direct.update({name: f"local_packages: {written.get(where, where)}" for name, where in res.local.items()})
    by_version: dict[tuple[str, str], dict[str, tuple[resolve.Artifact, ...]]] = {}
    roots: dict[tuple[str, str], set[str]] = {}
    for platform, res in sorted(results.items()):
        for name, version in res.versions.items():
            key = (name, version)
            by_version.setdefault(key, {})[platform] = res.files.get(name, ())
            roots.setdefault(key, set()).update(_roots(name, res.parents, direct))
    packages = []
    for (name, version), per in sorted(by_version.items()):
        plats = tuple(sorted(per))
        files: dict[tuple[str, str], set[str]] = {}
        sizes: dict[tuple[str, str], int] = {}
        for platform, arts in per.items():
            for a in arts:
                files.setdefault((a.name, a.hash), set()).add(platform)
                if a.size is not None:  # one file has one size, whichever run reported it
                    sizes[(a.name, a.hash)] = max(a.size, sizes.get((a.name, a.hash), 0))
        packages.append(Package(
            name=name, version=version, via=tuple(sorted(roots[(name, version)])),
            platforms=() if plats == t.platforms else plats,
            files=tuple(File(name=n, hash=h, size=sizes.get((n, h)),
                             platforms=() if tuple(sorted(p)) == plats else tuple(sorted(p)))
                        for (n, h), p in sorted(files.items()))))
    return tuple(packages)


def _roots(name: str, parents: Mapping[str, tuple[str, ...]], direct: Mapping[str, str]) -> set[str]:
    """The direct requirements (as written) whose dependencies pull `name` in."""
    seen, frontier, found = {name}, [name], set()
    while frontier:
        current = frontier.pop()
        if current in direct:
            found.add(direct[current])
        for up in parents.get(current, ()):
            if up and up not in seen:
                seen.add(up)
                frontier.append(up)
    return found or {"(from the parent image)"}


@dataclass(frozen=True)
class _Options:
    """How one run locks: the command line's choices."""

    platforms: tuple[str, ...]
    upgrade: bool
    check: bool
    wanted: tuple[str, ...]  # --upgrade-package names, normalised
    jobs: int
    resolver: Callable[[resolve.Request], resolve.Resolution]


# One resolution to run: the image, the platform, uv's request, and the locked parent it is layered on.
_Job = tuple[Target, str, resolve.Request, LockedImage | None]
_Failures = dict[tuple[str, str], tuple[Target, list[str], resolve.ResolveError, LockedImage | None]]


def run(plan: Plan, root: Path, path: Path, *, platforms: tuple[str, ...] | None = None, upgrade: bool = False,
        upgrade_packages: tuple[str, ...] = (), check: bool = False, mirrors: Mapping[str, str] | None = None,
        skip_parents: bool = False,
        jobs: int = 8, resolver: Callable[[resolve.Request], resolve.Resolution] = resolve.resolve) -> Result:
    """Lock every image of plan into the lock file at path; write nothing (the caller writes Result.new).
    ConfigError with every problem.

    platforms: None takes the project's `platforms:` (linux/amd64 unless it says otherwise).
    skip_parents: ask no registry; a parent image the old lock did not pin stays unpinned (compile says so).
    """
    old_text, old, unreadable = _old_lock(path)
    chosen = _chosen_platforms(plan.project.platforms if platforms is None else platforms)
    todo = targets(plan, root, chosen)
    options = _Options(platforms=chosen, upgrade=upgrade, check=check,
                       wanted=_upgrade_names(upgrade_packages, todo, old), jobs=max(1, jobs), resolver=resolver)
    _require_pythons(todo)
    errors: list[Diagnostic] = []
    digests = _parent_digests(todo, old, options, errors, skip_parents=skip_parents, mirrors=mirrors)
    new, resolved = _lock_images(todo, old, digests, options, errors)
    if errors:
        raise ConfigError(errors)
    lock = Lock(images=new)
    text = lockfile.render(lock)
    return Result(path=path, old=old_text, new=text, changes=describe(old, lock), resolved=sorted(resolved),
                  images=len(new), unreadable=unreadable)


def _old_lock(path: Path) -> tuple[str | None, Lock, Diagnostic | None]:
    """The lock's text and the lock there is, to keep its pins. One that cannot be read (not UTF-8, malformed,
    edited by hand; a link out of the project, which write() then refuses) is written anew from the YAML, none of
    its pins kept (a hand edit is not taken over), and why is said. One a newer dockwright wrote is not written
    over."""
    text: str | None = ""
    try:
        text = lockfile.read_text(path)
        return text, (lockfile.parse(path, text) if text is not None else Lock(images={})), None
    except lockfile.NewerFormat:
        raise
    except ConfigError as exc:
        return text, Lock(images={}), exc.diagnostics[0]


def _chosen_platforms(platforms: tuple[str, ...]) -> tuple[str, ...]:
    if not platforms or any(p not in lockfile.PLATFORMS for p in platforms):
        raise UsageError(f"platforms must be among {', '.join(lockfile.PLATFORMS)}")
    return tuple(sorted(set(platforms)))


def _upgrade_names(upgrade_packages: tuple[str, ...], todo: Mapping[str, Target], old: Lock) -> tuple[str, ...]:
    """The --upgrade-package names, normalised; UsageError for one that no image requires or locks."""
    wanted = tuple(sorted({str(canonicalize_name(p)) for p in upgrade_packages}))
    known = {n for t in todo.values() for n in t.origins} | {p.name for i in old.images.values() for p in i.packages}
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise UsageError(f"--upgrade-package {unknown[0]}: no image requires or locks a package of that name")
    return wanted


def _require_pythons(todo: Mapping[str, Target]) -> None:
    """ConfigError for every image with requirements whose Python version is unknown."""
    errors = [Diagnostic(t.base_location or t.location,
                         f"cannot lock the requirements of image '{t.name}': {t.python_problem}", _NEXT)
              for t in todo.values() if t.installs and t.python is None]
    if errors:
        raise ConfigError(errors)


# -- parent digests ------------------------------------------------------------------------------


def _parent_digests(todo: Mapping[str, Target], old: Lock, options: _Options, errors: list[Diagnostic], *,
                    skip_parents: bool, mirrors: Mapping[str, str] | None) -> dict[str, Parent]:
    """The digest of each external parent reference: kept from the old lock unless --upgrade (a re-pushed
    tag changes nothing until then), else asked for. A reference that cannot be asked for is an error at
    each image built on it, added to errors."""
    from . import registry

    refs = sorted({t.external for t in todo.values() if t.external})
    digests, fetch = _kept_digests(refs, old, options, skip_parents=skip_parents)
    for r, answer in _ask_registries(todo, fetch, options, mirrors).items():
        if isinstance(answer, registry.RegistryError):
            hint = _SKIP_PARENTS_HINT if isinstance(answer, registry.Unreachable) else None
            errors.extend(Diagnostic(t.base_location or t.location,
                                     f"cannot lock parent image '{r}' of image '{t.name}': {answer}", hint)
                          for t in todo.values() if t.external == r)
        else:
            digests[r] = Parent(ref=r, digest=answer.digest, platforms=answer.platforms)
    return digests


def _kept_digests(refs: list[str], old: Lock, options: _Options, *,
                  skip_parents: bool) -> tuple[dict[str, Parent], list[str]]:
    """The digests kept from the old lock (for the project's platforms), and the references to ask for.
    skip_parents: ask for none; one the old lock did not pin stays unpinned."""
    platforms = options.platforms
    previous = _pinned_parents(old, platforms)
    fetch = [r for r in refs if options.upgrade or r not in previous]
    digests: dict[str, Parent] = {}
    if skip_parents:
        digests = {r: previous.get(r) or Parent(ref=r, digest="", platforms=()) for r in fetch}
        fetch = []
    for r in refs:
        if r not in fetch and r not in digests:
            keep = previous[r]
            digests[r] = Parent(ref=r, digest=keep.digest,
                                platforms=tuple((p, d) for p, d in keep.platforms if p in platforms))
    return digests, fetch


def _pinned_parents(old: Lock, platforms: tuple[str, ...]) -> dict[str, Parent]:
    """The old lock's parent entries by reference, those that pin every platform asked for."""
    return {i.parent.ref: i.parent for i in old.images.values()
            if i.parent is not None and {p for p, _ in i.parent.platforms} >= set(platforms)}


def _ask_registries(todo: Mapping[str, Target], fetch: list[str], options: _Options,
                    mirrors: Mapping[str, str] | None) -> dict[str, registry.Digests | registry.RegistryError]:
    """Each reference's digests, or why not: one request set per reference, in parallel, trusting the
    certificates of every image built on it."""
    from concurrent.futures import ThreadPoolExecutor

    cas = {r: tuple(sorted({c for t in todo.values() if t.external == r for c in t.certificates})) for r in fetch}
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        return dict(zip(fetch, pool.map(lambda r: _digest(r, options.platforms, mirrors, cas[r]), fetch)))


# -- packages ------------------------------------------------------------------------------------


def _lock_images(todo: Mapping[str, Target], old: Lock, digests: Mapping[str, Parent], options: _Options,
                 errors: list[Diagnostic]) -> tuple[dict[str, LockedImage], list[str]]:
    """Each image's entry, in waves (a layered child needs its parent's pins), and the names of those
    resolved again; a failed resolution is an error added to errors."""
    from concurrent.futures import ThreadPoolExecutor

    new: dict[str, LockedImage] = {}
    resolved: list[str] = []
    remaining = dict(todo)
    while remaining:
        wave = [t for t in remaining.values() if t.layered_on is None or t.layered_on not in remaining]
        if not wave:  # pragma: no cover - the plan's image graph has no cycle
            raise ConfigError([Diagnostic(None, "the images are built on each other in a cycle")])
        jobs: list[_Job] = []
        for t in wave:
            del remaining[t.name]
            jobs += _settle(t, new, old, digests, options)
        with ThreadPoolExecutor(max_workers=options.jobs) as pool:
            outcomes = list(pool.map(lambda job: _resolve(options.resolver, job[2]), jobs))
        per, failed = _by_image(jobs, outcomes)
        errors.extend(_resolve_error(t, plats, err, parent) for t, plats, err, parent in failed.values())
        for (t, _, _, parent) in jobs:
            if t.name in new or len(per.get(t.name, {})) != len(options.platforms):
                continue
            resolved.append(t.name)
            new[t.name] = LockedImage(name=t.name, python=t.python, platforms=options.platforms,
                                      inputs=inputs_digest(t, parent),
                                      parent=digests.get(t.external) if t.external else None,
                                      packages=_package_set(t, per[t.name]))
    return new, resolved


def _settle(t: Target, new: dict[str, LockedImage], old: Lock, digests: Mapping[str, Parent],
            options: _Options) -> list[_Job]:
    """Enter t in new when it needs no resolution (its old entry still holds, or it has no requirements);
    else the resolutions to run, one per platform. Nothing when its parent or parent digest failed
    (already reported)."""
    parent = new.get(t.layered_on) if t.layered_on else None
    if t.layered_on and parent is None:
        return []
    parent_entry = digests.get(t.external) if t.external else None
    if t.external and parent_entry is None:
        return []
    inputs = inputs_digest(t, parent)
    before = old.images.get(t.name)
    if before is not None and _still_holds(before, inputs, options):
        new[t.name] = LockedImage(name=t.name, python=t.python if t.installs else None,
                                  platforms=options.platforms, inputs=inputs, parent=parent_entry,
                                  packages=before.packages)
        return []
    if not t.installs:
        new[t.name] = LockedImage(name=t.name, python=None, platforms=options.platforms, inputs=inputs,
                                  parent=parent_entry, packages=())
        return []
    return [(t, platform, _request(t, platform, before, parent, options), parent) for platform in options.platforms]


def _still_holds(before: LockedImage, inputs: str, options: _Options) -> bool:
    """The old entry is kept: same inputs, and nothing asks for newer versions or a fresh resolution."""
    return (before.inputs == inputs and not options.upgrade and not options.check
            and not (set(options.wanted) & {p.name for p in before.packages}))


def _request(t: Target, platform: str, before: LockedImage | None, parent: LockedImage | None,
             options: _Options) -> resolve.Request:
    """uv's request for t on platform: the old pins as preferences (but those to upgrade), the parent's as
    constraints."""
    preferences = dict(before.pins(platform)) if before is not None else {}
    for name in options.wanted:
        preferences.pop(name, None)
    return resolve.Request(
        python=t.python or "", platform=platform, requirements=t.requirements,
        local_packages=tuple(where for _, _, where in t.local_packages), index_url=t.index_url,
        extra_index_urls=t.extra_index_urls, installer_args=t.installer_args, certificates=t.certificates,
        constraints=parent.pins(platform) if parent is not None else {}, preferences=preferences,
        upgrade=options.upgrade, upgrade_packages=options.wanted)


def _by_image(jobs: list[_Job], outcomes: list[resolve.Resolution | resolve.ResolveError]) -> tuple[
        dict[str, dict[str, resolve.Resolution]], _Failures]:
    """The resolutions per image and platform, and the failures: one for the platforms that fail alike."""
    per: dict[str, dict[str, resolve.Resolution]] = {}
    failed: _Failures = {}
    for (t, platform, _, parent), outcome in zip(jobs, outcomes):
        if isinstance(outcome, resolve.ResolveError):
            failed.setdefault((t.name, outcome.text), (t, [], outcome, parent))[1].append(platform)
        else:
            per.setdefault(t.name, {})[platform] = outcome
    return per, failed


def _digest(ref: str, platforms: tuple[str, ...], mirrors: Mapping[str, str] | None,
            cas: tuple[str, ...]) -> registry.Digests | registry.RegistryError:
    from . import registry

    try:
        return registry.digests(ref, platforms, mirrors=mirrors, cas=cas)
    except registry.RegistryError as exc:
        return exc


def _resolve(resolver: Callable[[resolve.Request], resolve.Resolution],
             request: resolve.Request) -> resolve.Resolution | resolve.ResolveError:
    try:
        return resolver(request)
    except resolve.ResolveError as exc:
        return exc


def describe(old: Lock, new: Lock) -> list[str]:
    """What changed, one line each: `image: package 1.0 -> 1.1`, `image: parent python:3.11-slim sha256:..`."""
    out = []
    for name in sorted(set(old.images) | set(new.images)):
        a, b = old.images.get(name), new.images.get(name)
        if a is None or b is None:
            out.append(f"{name}: {'added' if a is None else 'removed'}")
            continue
        lines = _parent_change(a, b) + _package_changes(a, b)
        if a.inputs != b.inputs and not lines:
            lines.append("inputs changed")
        out += [f"{name}: {line}" for line in lines]
    return out


def _pinned(parent: Parent | None) -> str:
    return (parent.digest[:19] or "unpinned") if parent else "none"


def _parent_change(a: LockedImage, b: LockedImage) -> list[str]:
    if (a.parent and a.parent.digest) == (b.parent and b.parent.digest):
        return []
    ref = b.parent.ref if b.parent else a.parent.ref if a.parent else "?"
    return [f"parent {ref} {_pinned(a.parent)} -> {_pinned(b.parent)}"]


def _package_changes(a: LockedImage, b: LockedImage) -> list[str]:
    va = {(p.name, p.platforms): p for p in a.packages}
    vb = {(p.name, p.platforms): p for p in b.packages}
    out = []
    for key in sorted(set(va) | set(vb)):
        pa, pb = va.get(key), vb.get(key)
        label = key[0] + (f" ({', '.join(key[1])})" if key[1] else "")
        if pa is None and pb is not None:
            out.append(f"{label} {pb.version} (new)")
        elif pb is None and pa is not None:
            out.append(f"{label} {pa.version} (removed)")
        elif pa is not None and pb is not None and pa != pb:
            out.append(f"{label} {pa.version} -> {pb.version}" if pa.version != pb.version
                       else f"{label} {pb.version} (files)")
    return out


def write(result: Result) -> bool:
    """Write the lock atomically, only when its bytes change, never through a symlink."""
    if not result.changed:
        return False
    path = result.path
    if path.is_symlink():
        raise ConfigError([Diagnostic(None, f"{shown_path(path)} is a symbolic link; dockwright does not write "
                                            "through links", "replace the link with the file it leads to, or remove "
                                                             "it: lock writes a regular file there")])
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {shown_path(path)}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(result.new.encode("utf-8"))
        current = os.umask(0)
        os.umask(current)
        os.chmod(tmp, 0o666 & ~current)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {shown_path(path)}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


__all__ = ["Target", "Result", "run", "write", "targets", "stale", "inputs_digest", "python_of", "describe",
           "DEFAULT_PLATFORMS"]
