"""Wall time of `dockwright build` on a wide DAG (one base, N independent children): one engine against pools.

Needs the builder test infrastructure running (`python tests/builders/infra.py up`, then any podman/buildah builder
test, or `python -c "import sys; sys.path.insert(0, 'tests/builders'); import infra; infra.up_containers()"`):
dockerd on /var/run/docker.sock, podman's API socket, buildah, the registry on 127.0.0.1:25000 and the BusyBox base
image. Every configuration builds a project of its own (a fresh name), so nothing is reused; each child's RUN is
`sleep S` (work that waits, as a download does), so that members on one machine with few cores measure what the
pool's placement gives, not how the cores are shared. Prints one table (or --json).

    python bench/pool.py                       # 9 children, 4 s each, -j 1 per member
    python bench/pool.py --children 12 --sleep 5 --json
    python bench/pool.py --only dockerds       # the baseline and one configuration
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BUILDERS = """builders:
  local: {{type: docker}}
  remote: {{type: docker, url: "{remote}", tls: {{ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}}}}
  podman: {{type: podman, url: "{podman}"}}
  buildah: {{type: buildah}}
  dockerds: {{type: pool, members: [local, remote]}}
  pool2: {{type: pool, members: [local, podman]}}
  pool3: {{type: pool, members: [local, podman, buildah]}}
"""
# (label, builder, --jobs): each pool member gets --jobs slots
CONFIGS = (("one engine (dockerd), -j 1", "local", 1), ("one engine (dockerd), -j 2", "local", 2),
           ("one engine (dockerd), -j 3", "local", 3),
           ("pool of 2 dockerds (local, remote TLS), -j 1", "dockerds", 1),
           ("pool of 2 (dockerd, podman), -j 1", "pool2", 1), ("pool of 3 (dockerd, podman, buildah), -j 1", "pool3", 1))


def project(name: str, args: argparse.Namespace) -> str:
    children = "".join(f"  c{i}: {{extends: base, run: [\"sleep {args.sleep}; echo {i} > /c\"]}}\n"
                       for i in range(1, args.children + 1))
    steps = "".join(f"      s{i}: {{environment: c{i}}}\n" for i in range(1, args.children + 1))
    return (f"version: 1\nproject: {name}\nregistry: {args.registry}/dwbench\nenvironments:\n  base:\n"
            f"    parent_image: {args.parent}\n    labels: {{bench: {name}}}\n    run: [\"echo base > /base\"]\n"
            f"{children}pipelines:\n  wide:\n    steps:\n{steps}runner: {{environment: base}}\n"
            + BUILDERS.format(podman=args.podman, remote=args.remote))


def one(label: str, builder: str, jobs: int, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    root = scratch / name
    root.mkdir()
    (root / "dockwright.yaml").write_text(project(name, args), encoding="utf-8")
    shutil.copytree(args.certs, root / "certs")
    compiled = subprocess.run([sys.executable, "-m", "compiler", "compile"], cwd=root, capture_output=True, text=True)
    if compiled.returncode != 0:
        raise SystemExit(f"bench: compile failed:\n{compiled.stderr}")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "compiler", "build", "--builder", builder, "--jobs", str(jobs),
                           "--push", "--json"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"bench: {label} exited {done.returncode}:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout)
    where: dict[str, int] = {}
    for item in data["images"]:
        where[item.get("builder") or builder] = where.get(item.get("builder") or builder, 0) + 1
    return {"config": label, "builder": builder, "jobs": jobs, "wall_s": round(wall, 1),
            "build_s": data["seconds"], "images": len(data["images"]), "per_member": where}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--children", type=int, default=9, help="independent images built on the base (default 9)")
    ap.add_argument("--sleep", type=int, default=4, help="seconds each child's RUN waits (default 4)")
    ap.add_argument("--registry", default="127.0.0.1:25000")
    ap.add_argument("--podman", default="unix:///run/dockwright-test/podman.sock")
    ap.add_argument("--parent", default="dockwright-test/busybox:1")
    ap.add_argument("--remote", default="tcp://127.0.0.1:23760", help="the second dockerd (mutual TLS)")
    ap.add_argument("--certs", type=Path, default=Path("/var/lib/dockwright-test/tls/client"),
                    help="its client ca.pem, cert.pem and key.pem")
    ap.add_argument("--only", help="only the configurations whose builder is this (local, dockerds, pool2, pool3)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    scratch_root = Path(__file__).resolve().parent / "out"
    scratch_root.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="dockwright-pool-", dir=scratch_root))
    try:
        rows = [one(label, builder, jobs, args, scratch) for label, builder, jobs in CONFIGS
                if builder == "local" and jobs == 1 or args.only in (None, builder)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = rows[0]["build_s"]
    for row in rows:
        row["speedup"] = round(base / row["build_s"], 2)
    if args.json:
        print(json.dumps({"children": args.children, "sleep_s": args.sleep, "rows": rows}, indent=2))
        return 0
    print(f"wide DAG: 1 base + {args.children} children, each RUN sleeps {args.sleep} s; every image pushed")
    print(f"{'configuration':<44} {'build s':>8} {'wall s':>7} {'speed-up':>8}  images per member")
    for row in rows:
        per = ", ".join(f"{k} {v}" for k, v in sorted(row["per_member"].items()))
        print(f"{row['config']:<44} {row['build_s']:>8.1f} {row['wall_s']:>7.1f} {row['speedup']:>7.2f}x  {per}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
