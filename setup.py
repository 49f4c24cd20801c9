"""Build the one compiled module, gearman._core.

Metadata lives in pyproject.toml; this file only declares the extension.
Named build switches (environment variables):
  CYGEARMAN_DEBUG_BUILD=1   compile with -O0 -g and Cython's bounds checks on
  CYGEARMAN_CYTHON_TRACE=1  line tracing for coverage/profilers
  CYGEARMAN_ANNOTATE=1      write Cython's HTML annotation next to the sources
"""
import os
import re
import sys

from setuptools import Extension, setup

try:
    import Cython
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - build isolation installs it
    sys.exit("cygearman needs Cython>=3.1,<4 to build (pip's build isolation installs it).")

# (a regex, not int() on split("."): pre-releases are spelled like "3.0a7")
_cython_version = re.match(r"(\d+)\.(\d+)", Cython.__version__)
if not _cython_version or not (3, 1) <= tuple(map(int, _cython_version.groups())) < (4, 0):
    sys.exit(f"cygearman needs Cython>=3.1,<4 to build; found Cython {Cython.__version__}"
             " (install one in that range, or let pip's build isolation provide it).")

DEBUG = os.environ.get("CYGEARMAN_DEBUG_BUILD") == "1"
TRACE = os.environ.get("CYGEARMAN_CYTHON_TRACE") == "1"
ANNOTATE = os.environ.get("CYGEARMAN_ANNOTATE") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "linetrace": TRACE,
    "profile": TRACE,
}
macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
if sys.platform == "win32":
    cflags = ["/Od"] if DEBUG else ["/O2"]
    libs = ["ws2_32"]
else:
    cflags = ["-O0", "-g"] if DEBUG else ["-O2"]
    libs = []

extensions = [
    Extension(
        "gearman._core",
        ["src/gearman/_core.pyx"],
        include_dirs=["src/gearman"],
        define_macros=macros,
        extra_compile_args=cflags,
        libraries=libs,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives=directives,
        annotate=ANNOTATE,
    ),
)
