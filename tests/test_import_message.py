"""``import gearman`` without a compiled core says why and what to run instead.

A copy of the package's Python files (the installed ones, without ``_core``) is
imported by a fresh interpreter run with ``-S`` (no site-packages: nothing else can
supply a ``gearman._core``), once laid out as the source checkout (``setup.py`` and
``src/gearman/_core.pyx`` next to it) and once as a broken installation.
"""
import os
import shutil
import subprocess
import sys

import gearman


def _copy_package(dest, extra_core=None):
    src = os.path.dirname(os.path.realpath(gearman.__file__))
    shutil.copytree(src, dest / "gearman",
                    ignore=shutil.ignore_patterns("_core.*.so", "_core.*.pyd", "__pycache__"))
    if extra_core:
        (dest / "gearman" / extra_core).write_bytes(b"")


def _checkout(dest):
    (dest / "setup.py").write_text("# stands for the checkout's setup.py\n")
    (dest / "src" / "gearman").mkdir(parents=True)
    (dest / "src" / "gearman" / "_core.pyx").write_text("# stands for the Cython core\n")


def _import(cwd):
    return subprocess.run([sys.executable, "-S", "-c", "import gearman"], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_import_from_an_unbuilt_source_tree_says_what_to_run(tmp_path):
    _copy_package(tmp_path)
    _checkout(tmp_path)
    r = _import(tmp_path)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()
    message = "\n".join(last[last.index(next(x for x in last if x.startswith("ImportError"))):])
    assert message.startswith(f"ImportError: cannot import gearman from the cygearman source "
                              f"tree {tmp_path}: its compiled core, gearman._core, is not built")
    assert "Run Python (and pytest) from another directory" in message
    assert "python -m pip install -e ." in message
    assert "python setup.py build_ext --inplace" in message
    assert "CONTRIBUTING.md" in message
    assert "circular import" not in r.stderr and "partially initialized" not in r.stderr


def test_a_core_built_for_another_python_is_named(tmp_path):
    _copy_package(tmp_path, extra_core="_core.cpython-299-x86_64-linux-gnu.so")
    _checkout(tmp_path)
    r = _import(tmp_path)
    assert r.returncode == 1
    assert "there is _core.cpython-299-x86_64-linux-gnu.so, but this Python" in r.stderr


def test_an_installation_without_its_core_says_reinstall(tmp_path):
    _copy_package(tmp_path)                      # no setup.py: not a checkout
    r = _import(tmp_path)
    assert r.returncode == 1
    assert ("ImportError: cannot import gearman: its compiled core, gearman._core, is "
            f"missing from {tmp_path / 'gearman'}.") in r.stderr
    assert "python -m pip install --force-reinstall cygearman" in r.stderr
    assert "circular import" not in r.stderr
