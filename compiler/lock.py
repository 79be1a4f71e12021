"""`dockwright lock`: what to lock for each image of the plan, the offline inputs check, and the run that
resolves (uv, in parallel threads) and asks registries for digests, then writes dockwright.lock.

Takes the Plan (not the pipeline's Compiled), so that compile can call `stale` offline later.
Library code: returns results or raises ConfigError / UsageError; the CLI prints and exits.
"""

from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from packaging.utils import canonicalize_name

from . import lockfile, registry, resolve
from .errors import ConfigError, Diagnostic, Location, UsageError, read_regular, shown_path
from .lockfile import File, Lock, LockedImage, Package, Parent
from .plan import Plan

DEFAULT_PLATFORMS = ("linux/amd64",)
_PYTHON_IMAGE = re.compile(r"(?:(?:docker\.io|index\.docker\.io)/)?(?:library/)?python:(3\.[0-9]{1,2})(?:\.[0-9]+)?"
                           r"(?:[-.][A-Za-z0-9._-]*)?(?:@sha256:[0-9a-f]{64})?")
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
    certificates: tuple[Path, ...]
    layered_on: str | None  # a generated parent image whose pins constrain this one
    external: str | None  # an external parent image reference, locked by digest


def python_of(image: str | None) -> str | None:
    """The Python version of an official python image reference (`python:3.11-slim` -> 3.11)."""
    m = _PYTHON_IMAGE.fullmatch(image or "")
    return m.group(1) if m else None


def targets(plan: Plan, root: Path, platforms: tuple[str, ...]) -> dict[str, Target]:
    """What each image of the plan needs locked (root: the project root, for certificate files)."""
    out: dict[str, Target] = {}
    for name, img in sorted(plan.images.items()):
        if img.spec is None:
            continue  # a custom parent built from the user's own Dockerfile: its FROM is theirs
        env = plan.environments.get(name) or plan.environments[img.environments[0]]
        base = env.base.value if env.base is not None else None
        parent = plan.images.get(img.parent) if img.parent else None
        python = (base.python if base is not None else None) or python_of(base.image if base is not None else None)
        problem = None
        if python is None and base is not None:
            problem = (f"the Python version of parent image '{base.image}' is not known" if base.image
                       else f"the Python version of the image built from '{base.dockerfile}' is not known")
        origins = {}
        for key, req in env.requirements.items():
            origins[key] = (req.value, req.origin.location, not req.origin.via)
        out[name] = Target(
            name=name, location=env.location, base_location=env.base.origin.location if env.base else None,
            python=python, python_problem=problem, platforms=platforms, requirements=img.requirements,
            origins=origins, index_url=img.spec.index_url, extra_index_urls=img.spec.extra_index_urls,
            installer_args=img.spec.installer_args,
            certificates=tuple(root / c for c in sorted(env.certificates)),
            layered_on=parent.name if parent is not None and parent.generated and img.spec.layered else None,
            external=img.base_ref if parent is None and img.base_ref else None,
        )
    return out


def inputs_digest(t: Target, parent: LockedImage | None) -> str:
    """Everything that changes what `lock` writes for t: compared offline against the lock."""
    data = {
        "format": lockfile.FORMAT, "python": t.python, "platforms": list(t.platforms),
        "target": resolve.MANYLINUX, "requirements": sorted(t.requirements), "index_url": t.index_url,
        "extra_index_urls": list(t.extra_index_urls), "args": list(resolve.resolution_args(t.installer_args)),
        "from": t.external,
        "parent": None if parent is None else {p: sorted(parent.pins(p).items()) for p in parent.platforms},
    }
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


def _resolve_error(t: Target, platforms: list[str], err: resolve.ResolveError,
                   parent: LockedImage | None) -> Diagnostic:
    lines = err.text.split("\n")
    head = lines[0].rstrip(":").strip() if lines else "uv failed"
    head = head[0].lower() + head[1:] if head else head
    notes: list[tuple[str, Location | None]] = [(re.sub(r"^cause:\s*", "", line.strip()), None)
                                                for line in lines[1:] if line.strip()]
    mentioned = _names(err.text, sorted(t.origins))
    where = [t.origins[n] for n in mentioned]
    for req, loc, _ in sorted(where, key=lambda w: (w[1] is None, str(w[1].file) if w[1] else "",
                                                     w[1].line if w[1] else 0)):
        notes.append((f"'{req}' is asked for here", loc))
    hint = None
    location = t.location
    if where:
        own = [w for w in where if w[2]] or where  # the image's own requirements before inherited ones
        location = own[0][1] or t.location
    if parent is not None:
        pins = parent.pins(platforms[0])
        clash = _names(err.text, sorted(pins))
        if clash:
            shown = ", ".join(f"{n} {pins[n]}" for n in clash)
            hint = (f"it conflicts with the pins of image '{parent.name}' ({shown}), which this image is built on; "
                    "move the pin to the parent environment, or stop layering this environment on it")
    low = err.text.lower()
    if hint is None and "certificate" in low:
        hint = ("if the index's certificate is signed by a private CA, list that CA in the environment's "
                "`certificates:`")
    elif hint is None and ("401 unauthorized" in low or "403 forbidden" in low):
        hint = ("give uv this machine's credentials for the index, e.g. in ~/.netrc; they are never written "
                "into the lock or the image")
    if err.missing_uv:
        location = None
    return Diagnostic(location, f"cannot lock image '{t.name}' for {', '.join(platforms)}: {head}", hint,
                      notes=tuple(notes))


def _package_set(t: Target, results: dict[str, resolve.Resolution]) -> tuple[Package, ...]:
    """Merge per-platform resolutions into packages: platform lists only where they differ."""
    direct = {key: t.origins[key][0] for key in t.origins}
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


def run(plan: Plan, root: Path, path: Path, *, platforms: tuple[str, ...] | None = None, upgrade: bool = False,
        upgrade_packages: tuple[str, ...] = (), check: bool = False, mirrors: Mapping[str, str] | None = None,
        skip_parents: bool = False,
        jobs: int = 8, resolver: Callable[[resolve.Request], resolve.Resolution] = resolve.resolve) -> Result:
    """Lock every image of plan into the lock file at path; write nothing (the caller writes Result.new).
    ConfigError with every problem.

    platforms: None takes the project's `platforms:` (linux/amd64 unless it says otherwise).
    skip_parents: ask no registry; a parent image the old lock did not pin stays unpinned (compile says so).
    """
    old_text = _read_text(path)
    old = lockfile.parse(path, old_text) if old_text is not None else Lock(images={})
    if platforms is None:
        platforms = plan.project.platforms
    if not platforms or any(p not in lockfile.PLATFORMS for p in platforms):
        raise UsageError(f"platforms must be among {', '.join(lockfile.PLATFORMS)}")
    platforms = tuple(sorted(set(platforms)))
    todo = targets(plan, root, platforms)
    wanted = tuple(sorted({str(canonicalize_name(p)) for p in upgrade_packages}))
    known = {n for t in todo.values() for n in t.origins} | {p.name for i in old.images.values() for p in i.packages}
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise UsageError(f"--upgrade-package {unknown[0]}: no image requires or locks a package of that name")

    errors: list[Diagnostic] = []
    for t in todo.values():
        if t.requirements and t.python is None:
            errors.append(Diagnostic(t.base_location or t.location,
                                     f"cannot lock the requirements of image '{t.name}': {t.python_problem}", _NEXT))
    if errors:
        raise ConfigError(errors)

    # Parent digests: one request set per distinct reference, in parallel; kept from the old lock
    # unless --upgrade (a re-pushed tag changes nothing until then).
    refs = sorted({t.external for t in todo.values() if t.external})
    cafiles = {r: tuple(sorted({c for t in todo.values() if t.external == r for c in t.certificates})) for r in refs}
    previous = {i.parent.ref: i.parent for i in old.images.values()
                if i.parent is not None and {p for p, _ in i.parent.platforms} >= set(platforms)}
    digests: dict[str, Parent] = {}
    fetch = [r for r in refs if upgrade or r not in previous]
    if skip_parents:
        for r in fetch:
            digests[r] = previous.get(r) or Parent(ref=r, digest="", platforms=())
        fetch = []
    for r in refs:
        if r not in fetch and r not in digests:
            keep = previous[r]
            digests[r] = Parent(ref=r, digest=keep.digest,
                                platforms=tuple((p, d) for p, d in keep.platforms if p in platforms))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        answers = dict(zip(fetch, pool.map(lambda r: _digest(r, platforms, mirrors, cafiles[r]), fetch)))
    for r, answer in answers.items():
        if isinstance(answer, str):
            for t in todo.values():
                if t.external == r:
                    errors.append(Diagnostic(t.base_location or t.location,
                                             f"cannot lock parent image '{r}' of image '{t.name}': {answer}"))
        else:
            digests[r] = Parent(ref=r, digest=answer.digest, platforms=answer.platforms)

    # Packages, in waves: a layered child needs its parent's pins.
    new: dict[str, LockedImage] = {}
    resolved: list[str] = []
    remaining = dict(todo)
    while remaining:
        wave = [t for t in remaining.values() if t.layered_on is None or t.layered_on not in remaining]
        if not wave:  # pragma: no cover - the plan's image graph has no cycle
            raise ConfigError([Diagnostic(None, "the images are built on each other in a cycle")])
        for t in wave:
            del remaining[t.name]
        jobs_: list[tuple[Target, str, resolve.Request, LockedImage | None]] = []
        for t in wave:
            parent = new.get(t.layered_on) if t.layered_on else None
            if t.layered_on and parent is None:
                continue  # the parent failed: already reported
            inputs = inputs_digest(t, parent)
            before = old.images.get(t.name)
            reuse = (before is not None and before.inputs == inputs and not upgrade and not check
                     and not (set(wanted) & {p.name for p in before.packages}))
            parent_entry = digests.get(t.external) if t.external else None
            if t.external and parent_entry is None:
                continue  # its digest failed: already reported
            if reuse and before is not None:
                new[t.name] = LockedImage(name=t.name, python=t.python if t.requirements else None,
                                          platforms=platforms, inputs=inputs, parent=parent_entry,
                                          packages=before.packages)
                continue
            if not t.requirements:
                new[t.name] = LockedImage(name=t.name, python=None, platforms=platforms, inputs=inputs,
                                          parent=parent_entry, packages=())
                continue
            for platform in platforms:
                prefs_p = dict(before.pins(platform)) if before is not None else {}
                for w in wanted:
                    prefs_p.pop(w, None)
                constraints = parent.pins(platform) if parent is not None else {}
                request = resolve.Request(
                    python=t.python or "", platform=platform, requirements=t.requirements, index_url=t.index_url,
                    extra_index_urls=t.extra_index_urls, installer_args=t.installer_args,
                    certificates=t.certificates, constraints=constraints, preferences=prefs_p,
                    upgrade=upgrade, upgrade_packages=wanted)
                jobs_.append((t, platform, request, parent))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            outcomes = list(pool.map(lambda job: _resolve(resolver, job[2]), jobs_))
        per: dict[str, dict[str, resolve.Resolution]] = {}
        failed: dict[tuple[str, str], tuple[Target, list[str], resolve.ResolveError, LockedImage | None]] = {}
        for (t, platform, _, parent), outcome in zip(jobs_, outcomes):
            if isinstance(outcome, resolve.ResolveError):  # one message for the platforms that fail alike
                failed.setdefault((t.name, outcome.text), (t, [], outcome, parent))[1].append(platform)
            else:
                per.setdefault(t.name, {})[platform] = outcome
        for t, plats, err, parent in failed.values():
            errors.append(_resolve_error(t, plats, err, parent))
        for (t, _, _, parent) in jobs_:
            if t.name in new or len(per.get(t.name, {})) != len(platforms):
                continue
            resolved.append(t.name)
            new[t.name] = LockedImage(name=t.name, python=t.python, platforms=platforms,
                                      inputs=inputs_digest(t, parent),
                                      parent=digests.get(t.external) if t.external else None,
                                      packages=_package_set(t, per[t.name]))
    if errors:
        raise ConfigError(errors)
    lock = Lock(images=new)
    text = lockfile.render(lock)
    return Result(path=path, old=old_text, new=text, changes=describe(old, lock), resolved=sorted(resolved),
                  images=len(new))


def _digest(ref: str, platforms: tuple[str, ...], mirrors: Mapping[str, str] | None,
            cafiles: tuple[Path, ...]) -> registry.Digests | str:
    try:
        return registry.digests(ref, platforms, mirrors=mirrors, cafiles=cafiles)
    except registry.RegistryError as exc:
        return str(exc)


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
        if a is None:
            out.append(f"{name}: added")
            continue
        if b is None:
            out.append(f"{name}: removed")
            continue
        if (a.parent and a.parent.digest) != (b.parent and b.parent.digest):
            ref = b.parent.ref if b.parent else a.parent.ref if a.parent else "?"
            before = (a.parent.digest[:19] or "unpinned") if a.parent else "none"
            after = (b.parent.digest[:19] or "unpinned") if b.parent else "none"
            out.append(f"{name}: parent {ref} {before} -> {after}")
        va = {(p.name, p.platforms): p for p in a.packages}
        vb = {(p.name, p.platforms): p for p in b.packages}
        for key in sorted(set(va) | set(vb)):
            pa, pb = va.get(key), vb.get(key)
            label = key[0] + (f" ({', '.join(key[1])})" if key[1] else "")
            if pa is None and pb is not None:
                out.append(f"{name}: {label} {pb.version} (new)")
            elif pb is None and pa is not None:
                out.append(f"{name}: {label} {pa.version} (removed)")
            elif pa is not None and pb is not None and pa != pb:
                what = f"{pa.version} -> {pb.version}" if pa.version != pb.version else f"{pb.version} (files)"
                out.append(f"{name}: {label} {what}")
        if a.inputs != b.inputs and not any(line.startswith(f"{name}:") for line in out):
            out.append(f"{name}: inputs changed")
    return out


def _read_text(path: Path) -> str | None:
    try:
        raw = read_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {shown_path(path)}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", "replace")
        raise lockfile.error(path, text, f"{lockfile.LOCK_FILE} is not UTF-8 text",
                             line=raw[:exc.start].count(b"\n") + 1) from None


def write(result: Result) -> bool:
    """Write the lock atomically, only when its bytes change, never through a symlink."""
    if not result.changed:
        return False
    path = result.path
    if path.is_symlink():
        raise UsageError(f"{shown_path(path)} is a symbolic link; dockwright does not write through links")
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
