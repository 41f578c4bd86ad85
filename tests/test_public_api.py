import os
import subprocess
import sys
from pathlib import Path

import blendcache


def test_all_names_resolve():
    for name in blendcache.__all__:
        assert hasattr(blendcache, name), name


def test_errors_form_one_tree():
    from blendcache import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.BlendCacheError)
        assert name.rstrip("_") in errors.__doc__


def test_the_sdk_is_exported_lazily():

    code = ("import sys, blendcache; assert 'blendcache.client' not in sys.modules; "
            "from blendcache import Client, AsyncClient, BlendCache, ChatResult; "
            "assert 'torch' not in sys.modules, 'the SDK over HTTP loads no model stack'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_sdk_loads_langchain_only_when_its_module_is_imported():

    code = ("import sys, blendcache, blendcache.client; from blendcache import Client; "
            "assert not [m for m in sys.modules if m.startswith('langchain')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_blendcache_from_a_checkout_keeps_its_folders_from_shadowing_packages():
    """``python -m`` from the repository root puts the root on sys.path, where kernels/ would
    hide the PyPI package ``kernels`` that transformers imports; importing blendcache drops it."""
    repo = Path(blendcache.__file__).resolve().parent
    code = ("import importlib.util, blendcache; spec = importlib.util.find_spec('kernels'); "
            "print(spec.origin if spec else '')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out != str(repo / "kernels" / "__init__.py"), out
