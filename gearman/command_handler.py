"""python-gearman 2.x's ``gearman.command_handler``: the base of the per-connection handlers.

The class lives in :mod:`gearman.connection_manager` (what a handler is in
cygearman: docs/migration.md); this module keeps python-gearman's import path.
"""
from gearman.connection_manager import GearmanCommandHandler as GearmanCommandHandler

__all__ = ["GearmanCommandHandler"]
