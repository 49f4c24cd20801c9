"""Guard: the suite exercises the compiled extension, from the package it belongs to.

If ``gearman._core`` were a pure-Python stand-in, or the ``gearman`` package on
``sys.path`` were a different copy from the one whose ``_core`` got loaded (a source
tree shadowing an installed wheel, say), every other test would be testing the wrong
thing.  These checks make that a failure instead of a silent pass.
"""
import importlib.machinery
import inspect
import os
import sys
import types

import gearman
import gearman._core as core
import gearman.errors


def test_core_is_an_extension_module_file():
    assert core.__file__, "gearman._core has no __file__"
    assert core.__file__.endswith((".so", ".pyd")), core.__file__
    assert any(core.__file__.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)
    assert isinstance(core.__spec__.loader, importlib.machinery.ExtensionFileLoader)
    assert core.__spec__.origin == core.__file__


def test_core_says_it_is_compiled():
    assert core.COMPILED is True


def test_core_classes_are_not_python_classes():
    for cls in (core.PacketReader, core.WriteBuffer):
        assert isinstance(cls, type)
        assert cls.__module__ == "gearman._core"
        # A class written in Python has plain function objects as methods and a __dict__
        # on its instances; the extension's classes have neither.
        for name in ("feed", "gets") if cls is core.PacketReader else ("request", "getvalue"):
            attr = cls.__dict__[name]
            assert not isinstance(attr, (types.FunctionType, staticmethod, classmethod)), name
            assert not inspect.isfunction(attr), name
        assert not hasattr(cls(), "__dict__")
    for fn in (core.pack_request, core.parse_packets, core.new_unique):
        assert not isinstance(fn, types.FunctionType)


def test_package_and_core_come_from_the_same_directory():
    pkg_dir = os.path.dirname(os.path.realpath(gearman.__file__))
    core_dir = os.path.dirname(os.path.realpath(core.__file__))
    assert pkg_dir == core_dir
    assert gearman._core is core is sys.modules["gearman._core"]
    errors_dir = os.path.dirname(os.path.realpath(gearman.errors.__file__))
    assert errors_dir == pkg_dir


def test_core_raises_the_packages_exception_classes():
    r = core.PacketReader()
    r.feed(b"\x00REQ\x00\x00\x00\x06\x00\x00\x00\x00")   # request magic where a response is due
    try:
        r.gets()
    except gearman.errors.ProtocolError as e:
        assert type(e) is gearman.errors.ProtocolError
    else:
        raise AssertionError("bad magic was accepted")


def test_installed_package_is_under_test_when_ci_asks():
    # scripts/test.sh sets this: the suite must run against the installed
    # wheel, never the source tree's gearman/ (which has no compiled core).
    if os.environ.get("CYGEARMAN_REQUIRE_INSTALLED") != "1":
        return
    source_tree = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    pkg = os.path.realpath(gearman.__file__)
    assert "site-packages" in pkg, pkg
    # the source tree's own package, not an environment that happens to live inside the
    # tree (scripts/test.sh --suite-only installs the wheel into <tree>/.venv)
    assert not pkg.startswith(os.path.join(source_tree, "gearman") + os.sep), pkg
