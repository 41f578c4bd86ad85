"""Dependencies point one way (DESIGN.md, "Layout"): each folder imports only the layers below it.

    kernels  <-  recompute  <-  chunk_cache  <-  middleware
                                 storage  <-  index  <-  middleware  <-  client

``storage`` takes the KV type from ``recompute.kv`` and nothing else of recompute; ``middleware``
takes from recompute only what generation needs. Read from the source (AST), lazy imports too.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BASE = {"blendcache.errors", "blendcache.config"}
ALLOWED = {
    "kernels": {"blendcache.kernels"},
    "recompute": {"blendcache.recompute", "blendcache.kernels"},
    "storage": {"blendcache.storage", "blendcache.recompute.kv", "blendcache.kernels"},
    "index": {"blendcache.index", "blendcache.storage"},
    "chunk_cache": {"blendcache.chunk_cache", "blendcache.recompute", "blendcache.storage"},
    "middleware": {"blendcache.middleware", "blendcache.index", "blendcache.chunk_cache",
                   "blendcache.storage", "blendcache.recompute.generate",
                   "blendcache.recompute.model", "blendcache.readers"},
    # The SDK: over HTTP (httpx) or, BlendCache, the pipeline in process, built as create_app
    # builds it.
    "client": {"blendcache.client", "blendcache.middleware", "blendcache.chunk_cache.cache",
               "blendcache.recompute.model"},
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def allowed(module: str, rules: set[str]) -> bool:
    if not module.startswith("blendcache"):
        return True
    return module in BASE or any(module == r or module.startswith(r + ".") for r in rules)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer):
    wrong = {f"{path.relative_to(REPO)}: {module}"
             for path in sorted((REPO / layer).rglob("*.py"))
             for module in imports(path) if not allowed(module, ALLOWED[layer])}
    assert not wrong, f"{layer} imports above itself:\n" + "\n".join(sorted(wrong))


def test_middleware_never_imports_triton():
    hits = [p for p in (REPO / "middleware").rglob("*.py")
            if any(m == "triton" or m.startswith("triton.") for m in imports(p))]
    assert hits == []


def test_the_rule_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from blendcache.middleware.app import create_app\n")
    assert not all(allowed(m, ALLOWED["recompute"]) for m in imports(bad))
