"""cygearman: a fast Gearman client and worker on a Cython core.

The PECL API (``GearmanClient().addServer(); doBackground(...)``) and the
python-gearman 2.x API (``GearmanClient(["host:4730"]).submit_job(...)``)
share one implementation.
"""
import importlib as _importlib


def _core_missing() -> str:
    """What to tell someone whose ``import gearman`` found no compiled core."""
    import os
    import sys
    from importlib.machinery import EXTENSION_SUFFIXES

    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(here)
    others = sorted(f for f in os.listdir(here)
                    if f.startswith("_core.") and f.endswith((".so", ".pyd")))
    this = f"{sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]}"
    found = (f" (there is {', '.join(others)}, but this Python, {this}, loads only "
             f"_core{EXTENSION_SUFFIXES[0]})" if others else "")
    if os.path.isfile(os.path.join(top, "setup.py")) and \
            os.path.isfile(os.path.join(top, "src", "gearman", "_core.pyx")):
        # numpy and asyncpg say the same: the source tree is on sys.path, unbuilt.
        return (
            f"cannot import gearman from the cygearman source tree {top}: its compiled core, "
            f"gearman._core, is not built there{found}.\n"
            "Run Python (and pytest) from another directory to use the installed cygearman "
            "(python -m puts the current directory first on sys.path), or build the core in "
            "place:\n"
            f"    cd {top} && python -m pip install -e .   "
            "# or: python setup.py build_ext --inplace\n"
            "(CONTRIBUTING.md: building in place and running one test in seconds)")
    return (f"cannot import gearman: its compiled core, gearman._core, is missing from "
            f"{here}{found}.\n"
            f"Reinstall cygearman for this Python: python -m pip install --force-reinstall "
            f"cygearman")


try:
    # First, so that a missing core says so instead of failing later as "cannot import
    # name '_core' from partially initialized module 'gearman' (circular import)".
    _importlib.import_module("gearman._core")
except ModuleNotFoundError as _exc:
    if _exc.name != "gearman._core":
        raise
    raise ImportError(_core_missing(), name="gearman._core") from None

from gearman import constants
from gearman.constants import *  # noqa: F401,F403  (the GEARMAN_* and JOB_* names)
from gearman.errors import GearmanError, GearmanException
from gearman.client import GearmanClient, GearmanTask
from gearman.worker import GearmanJob, GearmanWorker
from gearman import _core  # noqa: F401  (gearman._core, loaded above, stays a package attribute)
from gearman.admin_client import GearmanAdminClient
from gearman.connection_manager import DataEncoder

import logging as _logging

_logging.getLogger("gearman").addHandler(_logging.NullHandler())

from gearman._version import __version__

__all__ = [
    "GearmanClient",
    "GearmanTask",
    "GearmanWorker",
    "GearmanJob",
    "GearmanError",
    "GearmanException",
    "GearmanAdminClient",
    "DataEncoder",
    "__version__",
]
__all__ += constants.__all__   # the form mypy understands as re-exports
