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
    import subprocess
    import sys

    code = ("import sys, blendcache; assert 'blendcache.client' not in sys.modules; "
            "from blendcache import Client, AsyncClient, BlendCache, ChatResult; "
            "assert 'torch' not in sys.modules, 'the SDK over HTTP loads no model stack'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_sdk_loads_langchain_only_when_its_module_is_imported():
    import subprocess
    import sys

    code = ("import sys, blendcache, blendcache.client; from blendcache import Client; "
            "assert not [m for m in sys.modules if m.startswith('langchain')]")
    subprocess.run([sys.executable, "-c", code], check=True)
