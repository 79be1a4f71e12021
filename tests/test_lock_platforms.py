"""Per-platform resolutions merge into one package list that gives each platform back exactly: its versions,
its files, and the direct requirements that pull each package in (a property over any resolutions)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from compiler import lockfile
from compiler.lock import Target, _package_set
from compiler.resolve import Artifact, Resolution

PLATFORMS = ("linux/amd64", "linux/arm64")
_names = st.sampled_from(["a", "b", "c", "d", "e"])
_versions = st.sampled_from(["1.0", "1.1", "2.0"])
_artifacts = st.builds(Artifact, name=st.sampled_from(["x.whl", "y.whl", "z.tar.gz"]),
                       hash=st.sampled_from(["sha256:" + c * 64 for c in "012"]), size=st.none() | st.integers(0, 9))


@st.composite
def resolutions(draw: st.DrawFn) -> Resolution:
    versions = draw(st.dictionaries(_names, _versions, min_size=1))
    parents = {n: tuple(sorted(draw(st.sets(st.sampled_from(sorted(versions) + [""]), min_size=1))))
               for n in versions}
    files = {n: tuple(sorted(draw(st.sets(_artifacts, min_size=1)), key=lambda a: a.name)) for n in versions}
    return Resolution(versions=versions, parents=parents, files=files)


def _target(platforms: tuple[str, ...]) -> Target:
    return Target(name="img", location=None, base_location=None, python="3.11", python_problem=None,
                  platforms=platforms, requirements=("a", "b"), origins={"a": ("a>=1", None, True),
                                                                          "b": ("b[x]", None, True)},
                  index_url=None, extra_index_urls=(), installer_args=(), certificates=(), layered_on=None,
                  external=None)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(PLATFORMS), min_size=1, unique=True), st.data())
def test_each_platform_gets_back_what_it_resolved(plats: list[str], data: st.DataObject) -> None:
    platforms = tuple(sorted(plats))
    per = {p: data.draw(resolutions()) for p in platforms}
    packages = _package_set(_target(platforms), per)
    lock = lockfile.Lock(images={"img": lockfile.LockedImage(name="img", python="3.11", platforms=platforms,
                                                             inputs="sha256:" + "0" * 64, parent=None,
                                                             packages=packages)})
    again = lockfile.parse(lockfile.Path("dockwright.lock"), lockfile.render(lock)).images["img"]
    for platform, res in per.items():
        assert again.pins(platform) == res.versions
        for pkg in again.packages:
            if not pkg.on(platform, platforms):
                continue
            files = {(f.name, f.hash) for f in pkg.files if platform in (f.platforms or pkg.platforms or platforms)}
            assert files == {(a.name, a.hash) for a in res.files[pkg.name]}
            for f in pkg.files:  # one file, one size: whichever platform's run reported it
                known = [a.size for r in per.values() if r.versions.get(pkg.name) == pkg.version
                         for a in r.files[pkg.name] if (a.name, a.hash) == (f.name, f.hash) and a.size is not None]
                assert f.size == (max(known) if known else None)
            # via: the direct requirements (as written) above it, or the parent image when none is.
            assert pkg.via and all(v in ("a>=1", "b[x]", "(from the parent image)") for v in pkg.via)
