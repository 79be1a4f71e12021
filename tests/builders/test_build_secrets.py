"""Build output never shows the expanded proxy credentials: every line dockwright prints or returns from
a build (live lines with -v, the failure's log tail, --json `log` and `error`, check output) has them as ***."""

from __future__ import annotations

import json
from pathlib import Path

from infra import Infra
from test_build import dockwright, unique, write

from compiler.builders.base import Scrubber


def _project(infra: Infra, command: str, *, check: bool = False) -> str:
    key = "checks" if check else "run"
    return f"""
version: 1
project: {unique("scrub")}
environments:
  leaky:
    parent_image: {infra.busybox}
    {key}: ["{command}"]
runner: {{environment: leaky}}
builders:
  local:
    type: docker
    proxy: {{http: "http://${{PU}}:${{PP}}@127.0.0.1:3128", no_proxy: localhost}}
"""


def test_a_failed_build_shows_the_proxy_credentials_as_stars(infra: Infra, tmp_path: Path) -> None:
    root = write(tmp_path, {"dockwright.yaml": _project(infra, "env | grep ^http_proxy=; echo alice; exit 1")})
    env = {"PU": "alice", "PP": "wonderland"}
    for args in (("build", "-v"), ("build", "--json")):
        result = dockwright(*args, cwd=root, env=env)
        assert result.returncode == 3, result.stderr
        printed = result.stdout + result.stderr
        assert "alice" not in printed and "wonderland" not in printed, printed
        if args[1] == "--json":
            (image,) = json.loads(result.stdout)["images"]
            assert image["log"] == ["http_proxy=http://***@127.0.0.1:3128", "***"]
        else:
            assert "  | http_proxy=http://***@127.0.0.1:3128\n  | ***\n" in result.stderr


def test_a_failed_check_shows_the_proxy_credentials_as_stars(infra: Infra, tmp_path: Path) -> None:
    root = write(tmp_path, {"dockwright.yaml": _project(
        infra, "echo https:/''/tok:won''derland@h.example/; echo won''derland >&2; exit 2", check=True)})
    result = dockwright("build", "--json", cwd=root, env={"PU": "alice", "PP": "wonderland"})
    assert result.returncode == 3, result.stderr
    assert "wonderland" not in result.stdout + result.stderr
    (image,) = json.loads(result.stdout)["images"]
    assert sorted(image["log"]) == ["***", "https://***@h.example/"]  # stdout and stderr, in either order


def test_scrubber_masks_user_parts_and_proxy_pieces() -> None:
    scrub = Scrubber({"http": "http://${PU}:${PP}@p:3128", "https": "https://tok%40x@p"},
                     {"PU": "alice", "PP": "wonder%2Fland"})
    assert scrub.line("x http://alice:wonder%2Fland@p:3128 y") == "x http://***@p:3128 y"
    assert scrub.line("user alice pass wonder/land or wonder%2Fland; tok@x") == "user *** pass *** or ***; ***"
    assert scrub.line("git+ssh://git@host/x ftp://a@b") == "git+ssh://***@host/x ftp://***@b"


KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def test_a_private_key_in_a_copied_folder_is_never_sent(infra: Infra, tmp_path: Path) -> None:
    name = unique("key")
    root = write(tmp_path, {"dockwright.yaml": f"""
version: 1
project: {name}
environments:
  keyed:
    parent_image: {infra.busybox}
    copy: [conf/]
runner: {{environment: keyed}}
""", "conf/app.yaml": "a: 1\n", "conf/deploy/id_ed25519": "# mine\n" + KEY})
    result = dockwright("build", cwd=root)
    assert result.returncode == 3, result.stderr
    assert result.stderr.split("error: ", 1)[1].splitlines()[:3] == [
        "image 'keyed' failed",
        "  conf/deploy/id_ed25519 holds a private key, and building generated/images/keyed/Dockerfile would copy it "
        "into the image; nothing was sent to the engine",
        "  hint: add 'conf/deploy/id_ed25519' to .dockerignore, or move the key out of what copy and "
        "local_packages name"]
    (root / ".dockerignore").write_text("conf/deploy/\n")
    result = dockwright("build", cwd=root)
    assert result.returncode == 0, result.stderr
