"""python-gearman 2.x's ``gearman.client_handler``: the client's per-connection handler.

The class lives in :mod:`gearman.connection_manager` (what a handler is in
cygearman: docs/migration.md); this module keeps python-gearman's import path.
"""
from gearman.connection_manager import GearmanClientCommandHandler as GearmanClientCommandHandler

__all__ = ["GearmanClientCommandHandler"]
