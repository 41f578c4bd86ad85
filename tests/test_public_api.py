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
