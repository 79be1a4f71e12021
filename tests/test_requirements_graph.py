"""Requirements files naming each other with -r: any shape of them is read as pip reads it. A file reached twice
(a diamond) is read once; a file that names itself through a chain of -r lines (a loop, which pip refuses) is an
error at the line that closes the loop, naming the chain."""

from __future__ import annotations

import tempfile
from pathlib import Path

import networkx as nx
from hypothesis import given, strategies as st

from helpers import invoke

FILES = ["requirements.txt", "a.txt", "sub/b.txt", "sub/c.txt"]
PACKAGES = ["rich==13.7.1", "click==8.1.7", "attrs==23.2.0", "idna==3.7"]

# Each file's -r lines: a list of other (or the same) files, in order.
graphs = st.lists(st.lists(st.sampled_from(range(len(FILES))), max_size=3), min_size=len(FILES),
                  max_size=len(FILES))


def _relative(source: str, target: str) -> str:
    up = "../" * source.count("/")
    return f"{up}{target}"


@given(graphs)
def test_any_shape_of_r_lines_is_read_once_and_a_loop_is_an_error(edges: list[list[int]]) -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(FILES)))
    graph.add_edges_from((i, j) for i, targets in enumerate(edges) for j in targets)
    reached = {0} | nx.descendants(graph, 0)
    looped = any(nx.has_path(graph, 0, node) for cycle in nx.simple_cycles(graph) for node in cycle[:1])
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for i, name in enumerate(FILES):
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [PACKAGES[i], *(f"-r {_relative(name, FILES[j])}" for j in edges[i])]
            path.write_text("\n".join(lines) + "\n")
        (root / "dockwright.yaml").write_text(
            "version: 1\nproject: demo\nenvironments:\n  base:\n    python: '3.11'\n"
            "    requirements_files: [requirements.txt]\nrunner: {environment: base}\n")
        result = invoke("compile", cwd=root)
        loops = [line for line in result.stderr.splitlines() if "names itself through -r lines" in line]
        if looped:
            assert result.returncode == 1 and loops, result.stderr
            for line in loops:  # the chain starts and ends at the file named again
                named = line.split("requirements file '", 1)[1].split("'", 1)[0]
                chain = line.split("-r lines: ", 1)[1].split(" (", 1)[0].split(" -> ")
                assert chain[0] == chain[-1] == named and len(set(chain[:-1])) == len(chain) - 1
            return
        assert result.returncode == 0, result.stderr
        written = (root / "generated/images/base/requirements.txt").read_text()
        assert sorted(line for line in written.splitlines() if "==" in line) == sorted(
            PACKAGES[i] for i in reached)
