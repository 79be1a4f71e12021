#!/usr/bin/env python3
"""Benchmark dockwright on a synthetic, realistically shaped platform repository.

    python bench/bench.py                 # generate into a temp dir, 5 runs per figure
    python bench/bench.py --runs 9 --json # machine-readable
    python bench/bench.py --out /tmp/proj # keep the generated project
    python bench/bench.py --profile 25    # also cProfile one in-process compile

The generated project is deterministic (fixed seed): 50 environments (extends chains up to depth 3,
a custom parent Dockerfile, integrations, copies, requirements files), 100 pipelines x 10 steps spread
over included files, ~1 in 10 steps with `settings`, a runner and a server.

Stdlib only, plus the dockwright package itself (installed, or importable from the checkout).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SEED = 20240611

# ---------------------------------------------------------------------------------------------------
# A tiny YAML writer (block style, flow style for short collections, JSON-quoted strings when needed).

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _is_flat(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and all(
            not isinstance(i, (dict, list)) for i in v)) for v in value.values())
    if isinstance(value, list):
        return all(not isinstance(v, list) and (not isinstance(v, dict) or _is_flat(v)) for v in value)
    return True


def to_yaml(value: Any, indent: int = 0, width: int = 100) -> list[str]:
    """Lines of a block-style YAML mapping."""
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        head = f"{pad}{_scalar(key)}:"
        if isinstance(item, (dict, list)) and item:
            flow = _flow(item)
            if _is_flat(item) and len(head) + 1 + len(flow) <= width:
                lines.append(f"{head} {flow}")
            elif isinstance(item, dict):
                lines.append(head)
                lines.extend(to_yaml(item, indent + 2, width))
            else:
                lines.append(head)
                for elem in item:
                    if isinstance(elem, dict):
                        lines.append(f"{pad}  - {_flow(elem)}")
                    else:
                        lines.append(f"{pad}  - {_scalar(elem)}")
        elif isinstance(item, (dict, list)):
            lines.append(f"{head} {'{}' if isinstance(item, dict) else '[]'}")
        else:
            lines.append(f"{head} {_scalar(item)}")
    return lines


def write_yaml(path: Path, data: dict[str, Any], comment: str | None = None, *, blank_between: str | None = None) \
        -> None:
    lines = [f"# {comment}"] if comment else []
    for key, item in data.items():
        if blank_between is not None and key == blank_between and isinstance(item, dict):
            lines.append(f"{key}:")
            for name, entry in item.items():
                lines.extend(to_yaml({name: entry}, 2))
                lines.append("")
            continue
        lines.extend(to_yaml({key: item}))
        if isinstance(item, dict):
            lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------
# The synthetic project.

# (normalised-unique) PEP 508 requirements as people write them: pins, ranges, extras, markers.
REQUIREMENTS = [
    "pandas==2.2.2", "numpy>=1.26,<2", "scipy~=1.13.0", "scikit-learn>=1.4,<1.6", "pyarrow>=15.0.0",
    "polars==0.20.31", "requests[socks]>=2.31,<3", "httpx==0.27.0", "pydantic>=2.7,<3", "pydantic-settings==2.3.3",
    "fastapi==0.111.0", "uvicorn[standard]==0.30.1", "gunicorn>=22.0", "sqlalchemy>=2.0.30,<2.1",
    "psycopg2-binary==2.9.9", "boto3>=1.34,<1.35", "s3fs==2024.6.0", "fsspec[s3]==2024.6.0", "xgboost==2.0.3",
    "lightgbm~=4.3", "catboost==1.2.5", "torch==2.3.1; platform_machine == 'x86_64'", "torchvision==0.18.1",
    "transformers[torch]>=4.41,<5", "tokenizers>=0.19", "datasets==2.19.2", "accelerate>=0.30",
    "sentence-transformers==3.0.1", "onnxruntime==1.18.0; python_version >= '3.10'", "mlflow-skinny==2.13.2",
    "optuna>=3.6", "hydra-core==1.3.2", "omegaconf>=2.3", "typer>=0.12", "rich>=13.7", "tqdm>=4.66",
    "structlog==24.2.0", "prometheus-client>=0.20", "opentelemetry-api~=1.25", "tenacity>=8.3",
    "typing-extensions>=4.8; python_version < '3.12'", "python-dateutil>=2.9", "pytz==2024.1", "pyyaml>=6.0.1",
    "jinja2>=3.1.4", "click>=8.1", "matplotlib==3.9.0", "seaborn==0.13.2", "plotly>=5.22", "shap==0.45.1",
    "statsmodels==0.14.2", "prophet==1.1.5", "pmdarima>=2.0", "dask[dataframe]==2024.6.0", "duckdb==1.0.0",
    "pyspark==3.5.1", "delta-spark==3.2.0", "great-expectations==0.18.16", "pandera[io]>=0.19",
    "feast[redis]==0.38.0", "redis>=5.0", "kafka-python-ng==2.2.2", "confluent-kafka==2.4.0", "orjson>=3.10",
    "msgpack>=1.0.8", "zstandard>=0.22", "faiss-cpu==1.8.0", "spacy>=3.7,<3.8", "nltk==3.8.1", "gensim==4.3.2",
    "opencv-python-headless==4.10.0.84", "pillow>=10.3", "albumentations==1.4.8", "timm==1.0.3",
    "google-cloud-bigquery>=3.25", "snowflake-connector-python[pandas]==3.10.1", "openpyxl>=3.1",
]
APT = ["git", "curl", "ca-certificates", "build-essential", "libgomp1", "libpq5", "libpq-dev", "openssh-client",
       "unzip", "jq", "libglib2.0-0", "libsm6", "libxext6", "ffmpeg", "default-jre-headless", "tini",
       "procps", "less", "graphviz", "libsnappy1v5", "liblz4-1", "locales", "tzdata", "wget"]
DOMAINS = ["churn", "fraud", "recsys", "search", "pricing", "forecast", "nlp", "vision", "ads", "risk"]
STEP_NAMES = ["ingest", "extract", "validate-data", "clean", "join-sources", "featurize", "embed", "split",
              "balance", "train", "tune", "cross-validate", "evaluate", "explain", "calibrate", "compare",
              "register", "package", "export-onnx", "deploy-staging", "smoke-test", "deploy", "score", "backfill",
              "aggregate", "publish", "report", "notify", "monitor", "cleanup"]
PIPELINE_KINDS = ["training", "scoring", "etl", "eval", "backfill", "monitoring", "retrain", "features"]

INTEGRATIONS: dict[str, dict[str, Any]] = {
    "sklearn": {"description": "scikit-learn with OpenMP", "requirements": ["scikit-learn>=1.4,<1.6", "joblib>=1.4"],
                "apt_packages": ["libgomp1"], "env": {"OMP_NUM_THREADS": "4"}},
    "mlflow": {"requirements": ["mlflow-skinny==2.13.2", "boto3>=1.34,<1.35"],
               "env": {"MLFLOW_TRACKING_URI": "http://mlflow.ml-platform.svc:5000"}},
    "wandb": {"requirements": ["wandb==0.17.2"], "env": {"WANDB_SILENT": "true", "WANDB_PROJECT": "platform"}},
    "s3": {"requirements": ["s3fs==2024.6.0", "boto3>=1.34,<1.35"], "env": {"AWS_DEFAULT_REGION": "eu-west-1"}},
    "postgres": {"requirements": ["psycopg2-binary==2.9.9", "sqlalchemy>=2.0.30,<2.1"], "apt_packages": ["libpq5"]},
    "spark": {"requirements_files": ["requirements/spark.txt"], "apt_packages": ["default-jre-headless", "procps"],
              "env": {"JAVA_HOME": "/usr/lib/jvm/default-java", "PYSPARK_PYTHON": "python"}},
    "great-expectations": {"requirements": ["great-expectations==0.18.16"],
                           "labels": {"com.acme.data-quality": "enabled"}},
}

ROOTS: dict[str, dict[str, Any]] = {
    "py311-base": {
        "description": "The default Python image for the platform", "python": "3.11", "installer": "pip",
        "installer_args": ["--prefer-binary"], "apt_packages": ["git", "curl", "ca-certificates"],
        "requirements": ["pyyaml>=6.0.1", "structlog==24.2.0", "typer>=0.12"],
        "env": {"PYTHONUNBUFFERED": "1", "PIP_NO_CACHE_DIR": "1"}, "user": "app", "workdir": "/app",
        "labels": {"org.opencontainers.image.vendor": "acme", "team": "platform"},
        "checks": ["python -c 'import yaml, structlog'"],
    },
    "py310-base": {"python": "3.10", "apt_packages": ["git", "ca-certificates"],
                   "requirements": ["pyyaml>=6.0.1", "click>=8.1"], "env": {"PYTHONUNBUFFERED": "1"},
                   "workdir": "/srv", "labels": {"team": "platform"}},
    "py312-uv": {"python": "3.12", "installer": "uv", "installer_args": ["--compile-bytecode"],
                 "apt_packages": ["curl"], "requirements": ["orjson>=3.10", "rich>=13.7"], "user": "app",
                 "workdir": "/app", "env": {"UV_LINK_MODE": "copy", "PYTHONUNBUFFERED": "1"}},
    "cuda-base": {"parent_image": "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04", "python": "3.10",
                  "apt_packages": ["git", "libgomp1", "ca-certificates"],
                  "requirements": ["numpy>=1.26,<2", "torch==2.3.1; platform_machine == 'x86_64'"],
                  "env": {"NVIDIA_VISIBLE_DEVICES": "all", "PYTHONUNBUFFERED": "1"}, "workdir": "/workspace",
                  "labels": {"com.acme.gpu": "true"}, "checks": ["python -c 'import torch'"]},
    "spark-base": {"parent_image": "apache/spark-py:v3.4.0", "python": "3.10", "user": "185", "workdir": "/opt/spark/work-dir",
                   "requirements_files": ["requirements/spark.txt"], "env": {"PYSPARK_PYTHON": "python3"}},
    "slim-base": {"parent_image": "python:3.11-slim-bookworm", "apt_packages": ["tini"],
                  "requirements": ["requests[socks]>=2.31,<3"], "entrypoint": ["tini", "--"]},
    "custom-base": {"dockerfile": "docker/base.Dockerfile", "context": "docker", "python": "3.11",
                    "requirements": ["pandas==2.2.2", "pyarrow>=15.0.0"], "workdir": "/opt/app",
                    "labels": {"com.acme.base": "custom"}},
    "r-bridge": {"parent_image": "rocker/r-ver:4.3.2", "python": "3.10", "apt_packages": ["python3", "python3-venv", "libpq5"],
                 "requirements": ["rpy2==3.5.16", "pandas==2.2.2"], "env": {"R_HOME": "/usr/local/lib/R"}},
}


def _names(rng: random.Random, pool: list[str], k: int, taken: set[str]) -> list[str]:
    """k entries of pool whose normalised package names are not already taken."""
    def norm(r: str) -> str:
        return re.split(r"[\[<>=~!; ]", r, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
    out = []
    for req in rng.sample(pool, len(pool)):
        if norm(req) in taken:
            continue
        taken.add(norm(req))
        out.append(req)
        if len(out) == k:
            break
    return out


def generate(root: Path, *, n_envs: int = 50, n_pipelines: int = 100, n_steps: int = 10, seed: int = SEED) \
        -> dict[str, Any]:
    """Write the synthetic project under root; return a few facts about it."""
    rng = random.Random(seed)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    # -- files the project points at -------------------------------------------------------------
    (root / "docker").mkdir()
    (root / "docker" / "base.Dockerfile").write_text(
        "FROM python:3.11-slim-bookworm\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*\n"
        "COPY pip.conf /etc/pip.conf\n", encoding="utf-8")
    (root / "docker" / "pip.conf").write_text("[global]\nindex-url = https://pypi.acme.internal/simple\n")
    req_dir = root / "requirements"
    req_dir.mkdir()
    (req_dir / "common.txt").write_text(
        "# shared by every service image\nrequests[socks]>=2.31,<3\npydantic>=2.7,<3\ntenacity>=8.3\n"
        "prometheus-client>=0.20  # metrics\n")
    (req_dir / "serving.txt").write_text(
        "-r common.txt\nfastapi==0.111.0\nuvicorn[standard]==0.30.1\ngunicorn>=22.0\n"
        "orjson>=3.10 \\\n    ; python_version >= '3.9'\n")
    (req_dir / "spark.txt").write_text("pyspark==3.5.1\ndelta-spark==3.2.0\npyarrow>=15.0.0\n")
    (req_dir / "gpu.txt").write_text(
        "torchvision==0.18.1\naccelerate>=0.30\ntimm==1.0.3\n\n# inference\nonnxruntime==1.18.0; python_version >= '3.10'\n")
    for domain in DOMAINS:
        pkg = root / "src" / domain
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f'"""{domain} models."""\n')
        (pkg / "main.py").write_text("def main() -> None:\n    print('ok')\n")
        (root / "conf").mkdir(exist_ok=True)
        (root / "conf" / f"{domain}.yaml").write_text(f"model: {domain}\nthreshold: 0.5\n")
    (root / "certs").mkdir()
    for f in ("ca.pem", "cert.pem", "key.pem"):
        (root / "certs" / f).write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")

    # -- environments: roots, then chains of depth 1..3 ----------------------------------------------
    envs: dict[str, dict[str, Any]] = {}
    env_domain: dict[str, str] = {}
    roots = list(ROOTS)[: max(1, min(len(ROOTS), n_envs // 6))]
    for name in roots:
        envs[name] = dict(ROOTS[name])
        env_domain[name] = "platform"
    rest = n_envs - len(roots)
    n1 = round(rest * 0.38)
    n2 = round(rest * 0.36)
    n3 = rest - n1 - n2
    kinds = {1: ["common", "data", "ml", "serving", "core"], 2: ["train", "batch", "etl", "serve", "eval", "features"],
             3: ["train-gpu", "serve-canary", "etl-large", "eval-nightly", "batch-spot"]}
    levels: dict[int, list[str]] = {0: roots, 1: [], 2: [], 3: []}
    integ_names = list(INTEGRATIONS)
    integ_budget = list(integ_names)  # each integration is used at least once
    copy_budget = 6
    reqfile_budget = [["requirements/serving.txt"], ["requirements/gpu.txt"], ["requirements/common.txt"]]
    for level, count in ((1, n1), (2, n2), (3, n3)):
        for i in range(count):
            parent = rng.choice(levels[level - 1])
            domain = env_domain[parent] if level > 1 else DOMAINS[i % len(DOMAINS)]
            kind = rng.choice(kinds[level])
            name = f"{domain}-{kind}"
            n = 2
            while name in envs:
                name = f"{domain}-{kind}-v{n}"
                n += 1
            taken: set[str] = set()
            e: dict[str, Any] = {"extends": parent}
            if rng.random() < 0.3:
                e["description"] = f"{kind} image for the {domain} team"
            e["requirements"] = _names(rng, REQUIREMENTS, rng.randint(2, 6), taken)
            if rng.random() < 0.4:
                e["apt_packages"] = rng.sample(APT, rng.randint(1, 3))
            if rng.random() < 0.6:
                e["env"] = {f"{domain.upper()}_MODE": kind, "LOG_LEVEL": rng.choice(["INFO", "DEBUG", "WARNING"])}
                if rng.random() < 0.3:
                    e["env"]["OMP_NUM_THREADS"] = str(rng.choice([1, 2, 4, 8]))
            if rng.random() < 0.5:
                e["labels"] = {"team": domain, "com.acme.cost-center": f"ml-{rng.randint(100, 999)}"}
            if integ_budget and (level >= 2 or rng.random() < 0.2) and rng.random() < 0.5:
                e["integrations"] = [integ_budget.pop(0)]
                if rng.random() < 0.4:
                    extra = rng.choice(integ_names)
                    if extra not in e["integrations"]:
                        e["integrations"].append(extra)
            if copy_budget and level >= 2 and rng.random() < 0.4:
                copy_budget -= 1
                e["copy"] = [f"src/{domain}/"] if domain in DOMAINS else []
                if domain in DOMAINS and rng.random() < 0.6:
                    e["copy"].append({"from": f"conf/{domain}.yaml", "to": f"/etc/{domain}/conf.yaml"})
                if not e["copy"]:
                    del e["copy"]
            if reqfile_budget and level >= 2 and rng.random() < 0.25:
                e["requirements_files"] = reqfile_budget.pop(0)
            if kind.startswith("serve") and rng.random() < 0.7:
                e["entrypoint"] = ["python", "-m", f"{domain}.main"] if domain in DOMAINS else ["python"]
                e["cmd"] = ["--port", "8080"]
            if rng.random() < 0.1:
                e["run"] = ["python -m compileall -q /opt/venv"]
            if rng.random() < 0.15:
                e["checks"] = ["python -c 'import sys; print(sys.version)'"]
            if kind.endswith("gpu") and rng.random() < 0.5:
                e["parent_image"] = "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"  # a new base: rendered whole
                e["python"] = "3.10"
            envs[name] = e
            env_domain[name] = domain
            levels[level].append(name)
    # Whatever budget is left goes to the first deep environments, so every feature is present.
    deep = levels[3] + levels[2]
    for name in deep:
        if not integ_budget:
            break
        envs[name].setdefault("integrations", []).append(integ_budget.pop(0))
    for name in deep:
        if not reqfile_budget or len(reqfile_budget) <= 1:
            break
        envs[name].setdefault("requirements_files", reqfile_budget.pop(0))
    if not any("copy" in e for e in envs.values()):
        envs[deep[0]]["copy"] = ["src/churn/", {"from": "conf/churn.yaml", "to": "/etc/churn/conf.yaml"}]

    # -- pipelines -------------------------------------------------------------------------------
    leaves_first = levels[3] + levels[2] + levels[1] + levels[0]
    unused = list(leaves_first)
    pipelines_by_file: dict[str, dict[str, Any]] = {}
    n_settings = 0
    for p in range(n_pipelines):
        domain = DOMAINS[p % len(DOMAINS)]
        pname = f"{domain}-{PIPELINE_KINDS[(p // len(DOMAINS)) % len(PIPELINE_KINDS)]}-{p // 10:02d}"
        same_domain = [n for n in leaves_first if env_domain[n] == domain] or leaves_first

        def take() -> str | None:
            # Environments nothing uses yet go first (every environment is used), own team's first.
            for pick in [n for n in unused if env_domain[n] == domain] + unused:  # noqa: B023 - called in this round
                unused.remove(pick)
                return pick
            return None

        pipe_env = take() or rng.choice(same_domain)
        names = sorted(rng.sample(range(len(STEP_NAMES)), n_steps)) if n_steps <= len(STEP_NAMES) \
            else list(range(n_steps))
        step_names = [STEP_NAMES[i] if i < len(STEP_NAMES) else f"step-{i}" for i in names]
        steps: dict[str, Any] = {}
        for i, sname in enumerate(step_names):
            step: dict[str, Any] = {}
            if i > 0:
                k = 1 if i == 1 or rng.random() < 0.55 else 2
                window = step_names[max(0, i - 4):i]
                picks = sorted(rng.sample(window, min(k, len(window))), key=step_names.index)
                step["after"] = picks
            if unused and rng.random() < 0.5:
                step["environment"] = take()
            elif rng.random() < 0.45:
                step["environment"] = rng.choice(same_domain)
            if rng.random() < 0.1:
                n_settings += 1
                settings: dict[str, Any] = {}
                roll = rng.random()
                if roll < 0.6:
                    settings["requirements"] = [rng.choice(["matplotlib==3.9.0", "shap==0.45.1", "seaborn==0.13.2",
                                                            "evidently==0.4.29", "great-expectations==0.18.16"])]
                elif roll < 0.8:
                    settings["apt_packages"] = [rng.choice(["graphviz", "ffmpeg", "jq"])]
                    settings["requirements"] = ["plotly>=5.22"]
                else:
                    settings["env"] = {"BATCH_SIZE": str(rng.choice([256, 512, 1024]))}
                    settings["integrations"] = [rng.choice(integ_names)]
                step["settings"] = settings
            steps[sname] = step
        entry: dict[str, Any] = {"environment": pipe_env}
        if p % 7 == 0:
            entry = {"description": f"{domain} {PIPELINE_KINDS[(p // 10) % len(PIPELINE_KINDS)]} pipeline", **entry}
        entry["steps"] = steps
        pipelines_by_file.setdefault(f"pipelines/{domain}.yaml", {})[pname] = entry
    if unused:  # fewer steps than environments: hang the rest off the runner-less first pipeline
        raise SystemExit(f"bench: {len(unused)} environments are unused; raise --pipelines or --steps")

    # -- files -------------------------------------------------------------------------------------
    main = {
        "version": 1,
        "project": "acme-ml",
        "description": "Synthetic platform repository for benchmarking dockwright",
        "output": "generated",
        "registry": "registry.acme.internal:5000/ml",
        "include": ["envs/*.yaml", "pipelines/*.yaml"],
        "integrations": INTEGRATIONS,
        "environments": {n: envs[n] for n in roots},
        "runner": {"environment": roots[0], "settings": {"requirements": ["kfp==2.7.0", "dockwright-client==0.1.0"]}},
        "server": {"environment": roots[0],
                   "settings": {"requirements": ["mlflow==2.13.2", "psycopg2-binary==2.9.9"],
                                "env": {"SERVER_PORT": "8080"}, "entrypoint": ["mlflow", "server"]}},
        "builders": {
            "local": {"type": "docker"},
            "remote": {"type": "docker", "url": "tcp://10.1.2.3:2376",
                       "tls": {"ca": "certs/ca.pem", "cert": "certs/cert.pem", "key": "certs/key.pem"}},
        },
        "default_builder": "local",
    }
    write_yaml(root / "dockwright.yaml", main, "acme ML platform: environments and pipelines (synthetic)",
               blank_between="environments")
    by_domain: dict[str, dict[str, Any]] = {}
    for name in leaves_first:
        if name in roots:
            continue
        by_domain.setdefault(env_domain[name], {})[name] = envs[name]
    for domain, items in sorted(by_domain.items()):
        write_yaml(root / "envs" / f"{domain}.yaml", {"environments": dict(sorted(items.items()))},
                   f"{domain} team environments", blank_between="environments")
    for rel, pipes in sorted(pipelines_by_file.items()):
        write_yaml(root / rel, {"pipelines": pipes}, "pipelines", blank_between="pipelines")
    (root / ".gitignore").write_text("__pycache__/\n")
    return {"settings_steps": n_settings, "depths": {k: len(v) for k, v in levels.items()}}


# ---------------------------------------------------------------------------------------------------
# Measuring.


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _run(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t, proc


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        sys.stderr.write(f"bench: {what} exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
        raise SystemExit(1)


def whole_process(project: Path, runs: int) -> dict[str, Any]:
    py = sys.executable
    out_dir = project / "generated"
    cold, noop = [], []
    for _ in range(runs):
        shutil.rmtree(out_dir, ignore_errors=True)
        t, proc = _run([py, "-m", "compiler", "compile"], project)
        _check(proc, "compile (cold)")
        cold.append(t)
    for _ in range(runs):
        t, proc = _run([py, "-m", "compiler", "compile"], project)
        _check(proc, "compile (no-op)")
        if "0 created, 0 updated" not in proc.stdout:
            sys.stderr.write(f"bench: second compile was not a no-op: {proc.stdout}")
        noop.append(t)
    check = []
    for _ in range(runs):
        t, proc = _run([py, "-m", "compiler", "compile", "--check"], project)
        _check(proc, "compile --check")
        check.append(t)
    return {"compile_cold_s": _median(cold), "compile_noop_s": _median(noop), "compile_check_s": _median(check),
            "compile_cold_runs_s": cold, "compile_noop_runs_s": noop}


_LIBYAML = ("import sys, yaml\nfor f in sys.argv[1:]:\n    with open(f, 'rb') as h:\n"
            "        yaml.load(h.read(), Loader=yaml.CSafeLoader)\n")
# The least any compile on dockwright's fixed stack does: import the stack's libraries, parse the same YAML with
# libyaml, write as many files of the same sizes into the same folders (argv[1]: a JSON list of [path, size]).
# _FLOOR_STACK: Python's own start, the fixed stack's PyYAML and Jinja2 alone (no click, no packaging).
_FLOOR = ("import json, os, sys, yaml, jinja2, click, packaging.requirements\n"
          "for f in sys.argv[2:]:\n    with open(f, 'rb') as h:\n"
          "        yaml.load(h.read(), Loader=yaml.CSafeLoader)\n"
          "for rel, size in json.load(open(sys.argv[1])):\n"
          "    os.makedirs(os.path.dirname(rel), exist_ok=True)\n"
          "    with open(rel, 'wb') as h:\n        h.write(b'x' * size)\n")
_FLOOR_STACK = _FLOOR.replace(", click, packaging.requirements", "", 1)


def _output_sizes(out_dir: Path) -> list[tuple[str, int]]:
    return [(str(p.relative_to(out_dir.parent)), p.stat().st_size) for p in sorted(out_dir.rglob("*")) if p.is_file()]


def fast_path(project: Path, runs: int, scratch: Path) -> dict[str, Any]:
    """The compile fast path (compiler/fastpath.py) against bare start-up, in the same run: whole processes."""
    py = sys.executable
    env = {**os.environ, "DOCKWRIGHT_CACHE_DIR": str(scratch / "cache")}

    cpu: dict[str, list[float]] = {}  # CPU seconds (user + system) of the same processes: on a machine shared
    # with other work, wall time measures the others too

    def timed(cmd: list[str], cwd: Path, extra: dict[str, str] | None = None, what: str = "") -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**env, **(extra or {})})
        took = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        _check(proc, " ".join(cmd[1:]))
        if what:
            cpu.setdefault(what, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return took

    quick = scratch / "quickstart"
    shutil.rmtree(quick, ignore_errors=True)
    shutil.copytree(REPO / "examples" / "quickstart", quick)
    timed([py, "-m", "compiler", "compile"], quick)
    timed([py, "-m", "compiler", "compile"], project)
    script = str(Path(py).with_name("dockwright"))
    from compiler.driver import compile_project

    yaml_files = [str(p) for p in compile_project(project / "dockwright.yaml").source.files]  # project + includes
    bare, q_check, q_script, b_check, cold, uncached, libyaml, libyaml_in = [], [], [], [], [], [], [], []
    floor, floor_stack, floor_dir = [], [], scratch / "floor"
    (scratch / "floor.json").write_text(json.dumps(_output_sizes(project / "generated")))
    cold_cache = {"DOCKWRIGHT_CACHE_DIR": str(scratch / "cold-cache")}  # its own: the others keep their records
    timed([py, "-m", "compiler", "compile"], quick, cold_cache)  # the first compile of any project
    for _ in range(runs):
        bare.append(timed([py, "-c", "pass"], REPO, what="python_startup"))
        q_check.append(timed([py, "-m", "compiler", "compile", "--check"], quick, what="quickstart_check"))
        if os.path.exists(script):
            q_script.append(timed([script, "compile", "--check"], quick))
        b_check.append(timed([py, "-m", "compiler", "compile", "--check"], project))
        libyaml.append(timed([py, "-c", _LIBYAML, *yaml_files], project, what="libyaml_process"))
        shutil.rmtree(floor_dir, ignore_errors=True)
        floor_dir.mkdir()
        floor.append(timed([py, "-c", _FLOOR, str(scratch / "floor.json"), *yaml_files], floor_dir, what="floor"))
        shutil.rmtree(floor_dir)
        floor_dir.mkdir()
        floor_stack.append(timed([py, "-c", _FLOOR_STACK, str(scratch / "floor.json"), *yaml_files], floor_dir,
                                 what="floor_stack"))
        # Cold: no output and no record of the project (its fast path), only dockwright's own compiled
        # templates in the user's cache, as after the first compile of any project.
        shutil.rmtree(project / "generated", ignore_errors=True)
        for entry in (scratch / "cold-cache").glob("compile-*"):
            entry.unlink()
        cold.append(timed([py, "-m", "compiler", "compile"], project, cold_cache, what="bench_cold"))
        shutil.rmtree(project / "generated", ignore_errors=True)
        uncached.append(timed([py, "-m", "compiler", "compile"], project, {"DOCKWRIGHT_NO_CACHE": "1"},
                              what="bench_uncached"))
    import yaml

    for _ in range(runs):
        t = time.perf_counter()
        for f in yaml_files:
            yaml.load(Path(f).read_bytes(), Loader=yaml.CSafeLoader)
        libyaml_in.append(time.perf_counter() - t)
    timed([py, "-m", "compiler", "compile"], project)  # recorded again, for what follows
    m = {k: _median(v) for k, v in (("python_startup_s", bare), ("quickstart_check_s", q_check),
                                   ("quickstart_check_script_s", q_script), ("bench_check_s", b_check),
                                   ("bench_cold_s", cold), ("bench_uncached_s", uncached),
                                   ("libyaml_process_s", libyaml), ("floor_s", floor),
                                   ("floor_stack_s", floor_stack),
                                   ("libyaml_in_process_s", libyaml_in))}
    m["yaml_files"] = len(yaml_files)
    m["quickstart_check_x_startup"] = m["quickstart_check_s"] / m["python_startup_s"]
    m["bench_cold_x_libyaml_process"] = m["bench_cold_s"] / m["libyaml_process_s"]
    m["bench_uncached_x_libyaml_process"] = m["bench_uncached_s"] / m["libyaml_process_s"]
    m["cpu_s"] = {what: _median(seconds) for what, seconds in cpu.items()}
    m["cpu_bench_cold_x_libyaml_process"] = m["cpu_s"]["bench_cold"] / m["cpu_s"]["libyaml_process"]
    m["cpu_bench_uncached_x_libyaml_process"] = m["cpu_s"]["bench_uncached"] / m["cpu_s"]["libyaml_process"]
    m["cpu_quickstart_check_x_startup"] = m["cpu_s"]["quickstart_check"] / m["cpu_s"]["python_startup"]
    m["bench_cold_x_libyaml_in_process"] = m["bench_cold_s"] / m["libyaml_in_process_s"]
    m["floor_x_libyaml_process"] = m["floor_s"] / m["libyaml_process_s"]
    m["cpu_floor_x_libyaml_process"] = m["cpu_s"]["floor"] / m["cpu_s"]["libyaml_process"]
    m["floor_stack_x_libyaml_process"] = m["floor_stack_s"] / m["libyaml_process_s"]
    m["cpu_floor_stack_x_libyaml_process"] = m["cpu_s"]["floor_stack"] / m["cpu_s"]["libyaml_process"]
    return m


def import_time(runs: int) -> dict[str, Any]:
    py = sys.executable
    bare, imp = [], []
    for _ in range(runs):
        bare.append(_run([py, "-c", "pass"], REPO)[0])
        imp.append(_run([py, "-c", "import compiler.cli"], REPO)[0])
    proc = subprocess.run([py, "-X", "importtime", "-c", "import compiler.cli"], capture_output=True, text=True,
                          cwd=REPO)
    rows = []  # (cumulative us, depth, module), in the order Python prints them (children first)
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)), m.group(4)))
    # Only what `import compiler.cli` pulls in: the rows just above it that are nested deeper
    # (interpreter start-up and site's .pth imports are excluded).
    per_pkg: dict[str, int] = {}
    total_us = 0
    for i, (cumulative, depth, module) in enumerate(rows):
        if module != "compiler.cli":
            continue
        total_us = cumulative
        j = i - 1
        while j >= 0 and rows[j][1] > depth:
            top = rows[j][2].split(".")[0]
            if top != "compiler":  # the package itself: that is the total
                per_pkg[top] = max(per_pkg.get(top, 0), rows[j][0])
            j -= 1
        break
    top = sorted(per_pkg.items(), key=lambda kv: -kv[1])[:12]
    return {"python_startup_s": _median(bare), "import_compiler_cli_s": _median(imp),
            "import_overhead_s": _median(imp) - _median(bare),
            "importtime_compiler_cli_s": total_us / 1e6,
            "importtime_top_packages_s": {k: v / 1e6 for k, v in top}}


def _stages() -> list[str]:
    from compiler.driver import STAGES

    return [*STAGES, "emit-changes"]


def staged_compile(path: Path, out_dir: Path) -> tuple[dict[str, float], Any]:
    """compile_project with the seconds of each of its stages, plus emit.changes."""
    from compiler import emit
    from compiler.driver import compile_project

    times: dict[str, float] = {}
    compiled = compile_project(path, timings=times)
    t = time.perf_counter()
    emit.changes(out_dir, compiled.files)
    times["emit-changes"] = time.perf_counter() - t
    times["total"] = sum(times[s] for s in _stages())
    return times, compiled


def in_process(project: Path, runs: int) -> tuple[dict[str, Any], Any]:
    from compiler import emit

    out_dir = project / "generated"
    all_times: list[dict[str, float]] = []
    compiled = None
    for _ in range(runs):
        times, compiled = staged_compile(project / "dockwright.yaml", out_dir)
        all_times.append(times)
    # The same with the cyclic garbage collector off (a short-lived CLI can afford it): how much is GC.
    nogc = []
    gc.disable()
    try:
        for _ in range(runs):
            nogc.append(staged_compile(project / "dockwright.yaml", out_dir)[0]["total"])
    finally:
        gc.enable()
    assert compiled is not None
    # Cold write of every file into an empty directory beside the project, for reference.
    writes = []
    for _ in range(runs):
        scratch = Path(tempfile.mkdtemp(prefix="dockwright-bench-write-", dir=project.parent))  # the same disk
        try:
            t = time.perf_counter()
            emit.write(scratch, emit.changes(scratch, compiled.files))
            writes.append(time.perf_counter() - t)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    keys = [*_stages(), "total"]
    return {
        "first_s": {k: all_times[0][k] for k in keys},
        "median_s": {k: _median([t[k] for t in all_times]) for k in keys},
        "emit_write_cold_s": _median(writes),
        "total_gc_disabled_s": _median(nogc),
    }, compiled


def sizes(project: Path, compiled: Any) -> dict[str, Any]:
    source, proj, the_plan, files = compiled.source, compiled.project, compiled.plan, compiled.files
    yaml_lines = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in source.files)
    steps = sum(len(p.steps) for p in proj.pipelines.values())
    return {
        "environments": len(proj.environments),
        "derived_environments": len(the_plan.environments) - len(proj.environments),
        "integrations": len(proj.integrations),
        "pipelines": len(proj.pipelines),
        "steps": steps,
        "step_edges": sum(len(s.after) for p in proj.pipelines.values() for s in p.steps),
        "images": sum(1 for i in the_plan.images.values() if i.generated),
        "custom_parent_images": sum(1 for i in the_plan.images.values() if not i.generated),
        "generated_files": len(files),
        "generated_bytes": sum(len(t.encode("utf-8")) for t in files.values()),
        "yaml_files": len(source.files),
        "yaml_lines": yaml_lines,
    }


def profile(project: Path, top: int) -> str:
    from compiler import emit
    from compiler.driver import compile_project

    prof = cProfile.Profile()
    prof.enable()
    compiled = compile_project(project / "dockwright.yaml")
    emit.changes(compiled.out_dir, compiled.files)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------


def _ms(x: float) -> str:
    return f"{x * 1000:9.1f} ms"


IMPORT_LABEL = 'python -c "import compiler.cli"'


def report_text(r: dict[str, Any]) -> str:
    lines = [f"dockwright benchmark  (python {r['python']}, {r['runs']} runs, medians; project {r['project']})",
             f"byte code: {r['byte_code']}", ""]
    s = r["size"]
    lines.append("project size")
    for k, v in s.items():
        lines.append(f"  {k.replace('_', ' '):<26}{v:>10}")
    w = r["whole_process"]
    lines += ["", "whole process  (python -m compiler ..., subprocess)",
              f"  {'compile, cold (no output)':<36}{_ms(w['compile_cold_s'])}",
              f"  {'compile, no-op (output up to date)':<36}{_ms(w['compile_noop_s'])}",
              f"  {'compile --check':<36}{_ms(w['compile_check_s'])}"]
    f = r["fast_path"]
    lines += ["", "fast path  (whole processes, same run; unchanged projects are answered from the record)",
              f"  {'python -c pass':<44}{_ms(f['python_startup_s'])}",
              f"  {'quickstart compile --check (-m compiler)':<44}{_ms(f['quickstart_check_s'])}"
              f"   = {f['quickstart_check_x_startup']:.2f} x start-up",
              f"  {'quickstart compile --check (dockwright)':<44}{_ms(f['quickstart_check_script_s'])}",
              f"  {'bench project compile --check':<44}{_ms(f['bench_check_s'])}",
              f"  {'bench project compile, cold (no record)':<44}{_ms(f['bench_cold_s'])}",
              f"  {'  the same, DOCKWRIGHT_NO_CACHE=1':<44}{_ms(f['bench_uncached_s'])}",
              f"  {'libyaml parse of its %d YAML files, process' % f['yaml_files']:<44}{_ms(f['libyaml_process_s'])}"
              f"   cold = {f['bench_cold_x_libyaml_process']:.2f} x"
              f" ({f['bench_uncached_x_libyaml_process']:.2f} x uncached)",
              f"  {'  the same, in process (parse only)':<44}{_ms(f['libyaml_in_process_s'])}"
              f"   cold = {f['bench_cold_x_libyaml_in_process']:.2f} x",
              f"  {'floor: import the stack, parse, write as much':<44}{_ms(f['floor_s'])}"
              f"   = {f['floor_x_libyaml_process']:.2f} x libyaml",
              f"  {'  the same, PyYAML and Jinja2 only':<44}{_ms(f['floor_stack_s'])}"
              f"   = {f['floor_stack_x_libyaml_process']:.2f} x libyaml",
              "  CPU time (user + system) of the same processes:"]
    c = f["cpu_s"]
    lines += [f"    {label:<42}{_ms(c[key])}{extra}" for label, key, extra in (
        ("python -c pass", "python_startup", ""),
        ("quickstart compile --check", "quickstart_check", f"   = {f['cpu_quickstart_check_x_startup']:.2f} x start-up"),
        ("bench project compile, cold", "bench_cold", ""),
        ("  the same, DOCKWRIGHT_NO_CACHE=1", "bench_uncached", ""),
        ("libyaml parse, process", "libyaml_process", f"   cold = {f['cpu_bench_cold_x_libyaml_process']:.2f} x"
         f" ({f['cpu_bench_uncached_x_libyaml_process']:.2f} x uncached)"),
        ("floor (stack imports, parse, writes)", "floor", f"   = {f['cpu_floor_x_libyaml_process']:.2f} x libyaml"),
        ("  the same, PyYAML and Jinja2 only", "floor_stack",
         f"   = {f['cpu_floor_stack_x_libyaml_process']:.2f} x libyaml"))]
    imp = r["imports"]
    lines += ["", "imports",
              f"  {'python -c pass':<36}{_ms(imp['python_startup_s'])}",
              f"  {IMPORT_LABEL:<36}{_ms(imp['import_compiler_cli_s'])}",
              f"  {'  = import overhead':<36}{_ms(imp['import_overhead_s'])}",
              f"  {'-X importtime: compiler.cli':<36}{_ms(imp['importtime_compiler_cli_s'])}",
              "  -X importtime, cumulative per top-level package:"]
    for k, v in imp["importtime_top_packages_s"].items():
        lines.append(f"    {k:<34}{_ms(v)}")
    ip = r["in_process"]
    lines += ["", f"in-process stages  {'first run':>12}  {'median':>12}"]
    for k in [*_stages(), "total"]:
        lines.append(f"  {k:<16}{_ms(ip['first_s'][k]):>13}  {_ms(ip['median_s'][k]):>12}")
    lines.append(f"  {'total, gc disabled':<30}{_ms(ip['total_gc_disabled_s'])}")
    lines.append(f"  {'emit.write, cold, all files':<30}{_ms(ip['emit_write_cold_s'])}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# Limits: hostile or merely large input (many errors, alias bombs, a huge mapping), one process each.

_WRAPPED = ("import resource, sys\nfrom compiler.cli import run\nsys.argv = ['dockwright', *sys.argv[1:]]\n"
            "try:\n    run()\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(f'\\nMAXRSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')\n")


def _limit_cases() -> dict[str, str]:
    def unknown_keys(n: int) -> str:
        return "version: 1\nproject: demo\n" + "".join(f"unknown{i}: 1\n" for i in range(n))

    def typos(n: int) -> str:
        return "version: 1\nproject: demo\nenvironments:\n" + "".join(
            f"  e{i}:\n    python: '3.11'\n    requirments: [pandas]\n" for i in range(n))

    laughs = ["version: 1", "project: demo", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    maps = ["version: 1", "project: demo", "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    maps += [f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(9)) + "}" for i in range(1, 10)]
    big = ["version: 1", "project: demo", "environments:", "  base:", "    python: '3.11'", "    env:"]
    big += [f"      K{i:06d}: v{i}" for i in range(400_000)]
    big += ["runner: {environment: base}"]
    return {
        "1,000 unknown keys": unknown_keys(1000), "8,000 unknown keys": unknown_keys(8000),
        "1,000 environments with a typo": typos(1000), "8,000 environments with a typo": typos(8000),
        "10,000 unknown keys": unknown_keys(10_000),
        "billion laughs": "\n".join(laughs) + "\n", "nested-mapping alias bomb": "\n".join(maps) + "\n",
        "400,000 env keys (compile)": "\n".join(big) + "\n",
    }


def limits(runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dockwright-limits-", dir=Path(__file__).resolve().parent) as tmp:
        for name, text in _limit_cases().items():
            folder = Path(tmp) / re.sub(r"[^a-z0-9]+", "-", name.lower())
            folder.mkdir()
            (folder / "dockwright.yaml").write_text(text, encoding="utf-8")
            command = "compile" if "compile" in name else "validate"
            times, rss = [], []
            for _ in range(runs):
                t, proc = _run([sys.executable, "-c", _WRAPPED, command], folder)
                times.append(t)
                rss.append(int(proc.stderr.rsplit("MAXRSS ", 1)[1]) / 1024)
            said = (proc.stdout + proc.stderr).splitlines()
            last = [ln for ln in said if ln and not ln.startswith("MAXRSS") and "warning" not in ln][-1]
            out[name] = {"seconds": _median(times), "max_rss_mb": max(rss), "size_mb": len(text) / 1e6,
                         "last_line": last}
    return out


def limits_text(r: dict[str, Any]) -> str:
    lines = [f"{'case':<34}{'input':>9}{'seconds':>10}{'max RSS':>10}  last line"]
    for name, v in r.items():
        lines.append(f"{name:<34}{v['size_mb']:>7.2f}MB{v['seconds']:>10.2f}{v['max_rss_mb']:>8.0f}MB  {v['last_line']}")
    return "\n".join(lines) + "\n"


def write_lock(project: Path) -> dict[str, Any]:
    """A dockwright.lock for the project, made by the lock engine with a stand-in resolver (no uv, no index):
    each requirement pinned with three transitive dependencies, two files each; parents unpinned."""
    import hashlib

    from packaging.requirements import Requirement

    from compiler import lock as locking
    from compiler.lockfile import LOCK_FILE
    from compiler.driver import compile_project
    from compiler.resolve import Artifact, Resolution

    def resolver(request: Any) -> Resolution:
        versions, parents, files = {}, {}, {}
        for text in request.requirements:
            name = Requirement(text).name.lower().replace("_", "-").replace(".", "-")
            for dep in (name, *(f"{name}-dep{i}" for i in range(3))):
                versions[dep] = request.constraints.get(dep, "1.0")
                parents[dep] = ("",) if dep == name else (name,)
                files[dep] = tuple(Artifact(f"{dep.replace('-', '_')}-1.0-py3-none-{tag}.whl",
                                            "sha256:" + hashlib.sha256(f"{dep}{tag}".encode()).hexdigest(), 123456)
                                   for tag in ("any", "manylinux_2_28_x86_64"))
        return Resolution(versions=versions, parents=parents, files=files)

    compiled = compile_project(project / "dockwright.yaml", use_lock=False)
    result = locking.run(compiled.plan, project, project / LOCK_FILE, skip_parents=True, resolver=resolver)
    locking.write(result)
    text = (project / LOCK_FILE).read_text()
    return {"lock_images": result.images, "lock_bytes": len(text.encode()), "lock_lines": text.count("\n")}


def _cached_byte_code(scratch: Path) -> str:
    """Whole processes are timed as dockwright runs installed: its byte code compiled once (pip does that).
    With PYTHONDONTWRITEBYTECODE set, each process would compile every source of the package again (about
    40 ms); bench then keeps the byte code under its scratch folder instead (PYTHONPYCACHEPREFIX)."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is None:
        return "as Python keeps it"
    os.environ["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return "kept under the scratch folder (PYTHONDONTWRITEBYTECODE was set)"


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median); default 5")
    ap.add_argument("--out", type=Path, help="generate the project here and keep it (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--environments", type=int, default=50)
    ap.add_argument("--pipelines", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10, help="steps per pipeline")
    ap.add_argument("--generate-only", action="store_true", help="write the project and validate it, then stop")
    ap.add_argument("--profile", type=int, metavar="N", default=0,
                    help="also print the top N functions of a cProfile'd in-process compile")
    ap.add_argument("--locked", action="store_true",
                    help="also time compile with a dockwright.lock (written by the lock engine, stand-in resolver)")
    ap.add_argument("--limits", action="store_true",
                    help="time and memory of hostile or huge input (many errors, alias bombs, 400,000 env keys)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    signal.signal(signal.SIGTERM, _interrupt)  # temp folders are removed on the way out, as on Ctrl-C
    if args.limits:
        result = limits(args.runs)
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n" if args.json else limits_text(result))
        return 0

    # Everything bench makes besides a --out project (the project itself otherwise, the fast path's records, a
    # copy of the quickstart) goes into one folder under bench/out (git-ignored), not /tmp: a project lives on
    # the project's disk, and on some machines /tmp is far slower at creating files, which would dominate the
    # figures. It is removed at the end, on failure, Ctrl-C and SIGTERM too.
    scratch_root = Path(__file__).resolve().parent / "out"
    scratch_root.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="dockwright-bench-", dir=scratch_root))
    project = args.out.absolute() if args.out is not None else scratch / "project"
    os.environ["DOCKWRIGHT_CACHE_DIR"] = str(scratch / "cache")
    byte_code = _cached_byte_code(scratch)
    try:
        facts = generate(project, n_envs=args.environments, n_pipelines=args.pipelines, n_steps=args.steps)
        _, proc = _run([sys.executable, "-m", "compiler", "validate"], project)
        if proc.returncode != 0 or proc.stderr.strip():
            sys.stderr.write(f"bench: validate exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
            if proc.returncode != 0:
                return 1
        if args.generate_only:
            print(f"{project}: {proc.stdout.strip()}")
            return 0
        whole = whole_process(project, args.runs)  # leaves an up-to-date output behind
        if args.locked:
            lock_facts = write_lock(project)
            locked = whole_process(project, args.runs)
            ratio = locked["compile_cold_s"] / whole["compile_cold_s"]
            sys.stdout.write(f"lock: {lock_facts}\ncompile cold: unlocked {whole['compile_cold_s']:.3f} s, locked "
                             f"{locked['compile_cold_s']:.3f} s ({ratio:.2f}x); no-op: unlocked "
                             f"{whole['compile_noop_s']:.3f} s, locked {locked['compile_noop_s']:.3f} s; --check: "
                             f"unlocked {whole['compile_check_s']:.3f} s, locked {locked['compile_check_s']:.3f} s\n")
            return 0
        fast = fast_path(project, args.runs, scratch)
        imports = import_time(args.runs)
        ip, result = in_process(project, args.runs)
        report = {
            "python": sys.version.split()[0], "runs": args.runs, "project": str(project), "byte_code": byte_code,
            "validate": proc.stdout.strip(), "generator": facts,
            "size": sizes(project, result), "whole_process": whole, "fast_path": fast, "imports": imports, "in_process": ip,
        }
        if args.json:
            print(json.dumps(report, indent=2, sort_keys=True))
        else:
            sys.stdout.write(report_text(report))
        if args.profile:
            sys.stdout.write("\n" + profile(project, args.profile))
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch_root.rmdir()  # when nothing else is in it


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted (its temporary folders are removed)\n")
        sys.exit(130)
