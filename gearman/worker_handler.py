"""python-gearman 2.x's ``gearman.worker_handler``: the worker's per-connection handler.

The class lives in :mod:`gearman.connection_manager` (what a handler is in
cygearman: docs/migration.md); this module keeps python-gearman's import path.
"""
from gearman.connection_manager import GearmanWorkerCommandHandler as GearmanWorkerCommandHandler

__all__ = ["GearmanWorkerCommandHandler"]
