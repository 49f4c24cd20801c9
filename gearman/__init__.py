"""cygearman: a fast Gearman client and worker on a Cython core.

The PECL API (``GearmanClient().addServer(); doBackground(...)``) and the
python-gearman 2.x API (``GearmanClient(["host:4730"]).submit_job(...)``)
share one implementation.
"""
from gearman import constants
from gearman.constants import *  # noqa: F401,F403  (the GEARMAN_* and JOB_* names)
from gearman.errors import GearmanError, GearmanException
from gearman.client import GearmanClient, GearmanTask
from gearman.worker import GearmanJob, GearmanWorker
from gearman import _core
from gearman.admin_client import GearmanAdminClient
from gearman.connection_manager import DataEncoder

import logging as _logging

_logging.getLogger("gearman").addHandler(_logging.NullHandler())

__version__ = "0.1.0"

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
