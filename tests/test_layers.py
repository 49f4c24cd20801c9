"""The facade's layers run one way, and every public import path keeps working.

docs/design.md ("The facade's layers") draws the layers; this test reads the
import graph of the installed package (module-level and function-level imports
alike, with ``ast``) and fails on an import that goes up a layer, on a module
that imports the package root for a name (``from gearman import __version__``),
on a module no layer names, and on any import cycle.  It needs no server.
"""
from __future__ import annotations

import ast
import importlib
import pathlib
import pickle
import sys
from typing import Dict, List, Set

import pytest

import gearman

PKG = pathlib.Path(gearman.__file__).parent

#: bottom first; a module may import its own layer or those below it
LAYERS: List[Set[str]] = [
    # bottom: the compiled core, constants, errors, events, configuration
    {"_core", "_version", "constants", "errors", "events", "_config", "_aliases"},
    # the PECL classes
    {"_pecl_client", "_pecl_worker"},
    # the python-gearman 2.x surface, built on them, at its historic paths
    {"_legacy_client", "_legacy_worker", "client", "worker", "job", "protocol",
     "connection", "connection_manager", "util", "command_handler", "client_handler",
     "worker_handler", "admin_client_handler"},
    # asyncio and admin (python-gearman's admin client is built on Admin)
    {"aio", "admin", "admin_client"},
    # operations tools
    {"_tooling", "metrics", "otel", "exporter", "runner"},
    # the command line and the test plugin
    {"cli", "testing", "__main__"},
]
LAYER_OF: Dict[str, int] = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def _modules() -> Dict[str, pathlib.Path]:
    """Dotted name below ``gearman`` (``cli``, ``cli.submit``) -> source file."""
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            out[".".join(parts)] = path
    return out


def _top(name: str) -> str:
    return name.split(".")[0]


def _graph() -> Dict[str, Set[str]]:
    """Module -> the ``gearman`` modules it imports ('' is the package root)."""
    modules = _modules()
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
                found = {t[len("gearman."):] for t in targets if t.startswith("gearman.")}
                found |= {"" for t in targets if t == "gearman"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = (["gearman"] + package.split(".") if package else ["gearman"])
                    base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base != "gearman" and not base.startswith("gearman."):
                    continue
                below = base[len("gearman."):] if base != "gearman" else ""
                found = set()
                for alias in node.names:
                    sub = f"{below}.{alias.name}" if below else alias.name
                    if sub in modules or sub == "_core":
                        found.add(sub)              # from gearman import events
                    else:
                        found.add(below)            # a name of module `below` (or the root)
            else:
                continue
            graph[mod] |= {f for f in found if f != mod}
    return graph


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in _modules() if _top(m) not in LAYER_OF and m != "")
    assert not unplaced, f"modules no layer names (add them to docs/design.md and LAYERS): {unplaced}"


def test_imports_run_down_the_layers():
    wrong = []
    for mod, targets in _graph().items():
        if mod == "":
            continue                        # the package root re-exports the public names
        for t in targets:
            if t == "":
                # the root re-exports every layer: only the top layer may use it
                if LAYER_OF[_top(mod)] < len(LAYERS) - 1:
                    wrong.append(f"{mod} imports the package root "
                                 f"(import the module that holds the name)")
            elif _top(t) != _top(mod) and LAYER_OF[_top(t)] > LAYER_OF[_top(mod)]:
                wrong.append(f"{mod} (layer {LAYER_OF[_top(mod)]}) imports {t} "
                             f"(layer {LAYER_OF[_top(t)]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = _graph()
    graph.pop("", None)
    for targets in graph.values():
        targets.discard("")
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    cycles: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The graph reader is not blind: a bottom module importing the CLI is caught."""
    fake = tmp_path / "gearman"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "errors.py").write_text("def f():\n    from gearman.cli import main\n")
    (fake / "cli.py").write_text("from gearman import errors\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    assert _graph()["errors"] == {"cli"}
    with pytest.raises(AssertionError, match="errors .layer 0. imports cli"):
        test_imports_run_down_the_layers()
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle()


#: every import path python-gearman 2.x and PECL users rely on, with a name each must hold
PUBLIC_PATHS = {
    "gearman": ["GearmanClient", "GearmanWorker", "GearmanAdminClient", "DataEncoder",
                "GearmanTask", "GearmanJob", "GEARMAN_SUCCESS", "JOB_COMPLETE"],
    "gearman.client": ["GearmanClient", "GearmanTask"],
    "gearman.worker": ["GearmanWorker", "GearmanJob", "POLL_TIMEOUT_IN_SECONDS"],
    "gearman.admin_client": ["GearmanAdminClient", "ECHO_STRING"],
    "gearman.job": ["GearmanJob", "GearmanJobRequest"],
    "gearman.connection_manager": ["GearmanConnectionManager", "DataEncoder"],
    "gearman.connection": ["GearmanConnection"],
    "gearman.protocol": ["submit_cmd_for_background_priority", "GEARMAN_COMMAND_SUBMIT_JOB"],
    "gearman.errors": ["GearmanError", "ServerUnavailable", "ExceededConnectionAttempts"],
    "gearman.constants": ["PRIORITY_HIGH", "JOB_UNKNOWN"],
    "gearman.util": ["Stopwatch", "disambiguate_server_parameter", "unlist", "select"],
    "gearman.command_handler": ["GearmanCommandHandler"],
    "gearman.client_handler": ["GearmanClientCommandHandler"],
    "gearman.worker_handler": ["GearmanWorkerCommandHandler"],
    "gearman.admin_client_handler": ["GearmanAdminClientCommandHandler"],
}


@pytest.mark.parametrize("path", sorted(PUBLIC_PATHS))
def test_public_import_paths(path):
    module = importlib.import_module(path)
    missing = [n for n in PUBLIC_PATHS[path] if not hasattr(module, n)]
    assert not missing, f"{path} lacks {missing}"


def test_classes_keep_their_public_module_repr_and_pickling():
    from gearman.client import GearmanClient, GearmanTask
    from gearman.worker import GearmanJob, GearmanWorker
    from gearman.worker_handler import GearmanWorkerCommandHandler

    for cls, home in [(GearmanClient, "gearman.client"), (GearmanTask, "gearman.client"),
                      (GearmanWorker, "gearman.worker"), (GearmanJob, "gearman.worker")]:
        assert cls.__module__ == home, cls
        assert pickle.loads(pickle.dumps(cls)) is cls
    assert pickle.loads(pickle.dumps(GearmanWorkerCommandHandler)) is GearmanWorkerCommandHandler
    assert gearman.GearmanClient is GearmanClient and gearman.GearmanJob is GearmanJob
    assert repr(GearmanClient(["h1:4730"])) == "<GearmanClient servers=['h1:4730']>"
