"""python-gearman 2.x's ``gearman.admin_client_handler``: the admin client's per-connection handler.

The class lives in :mod:`gearman.connection_manager` (what a handler is in
cygearman: docs/migration.md); this module keeps python-gearman's import path.
"""
from gearman.connection_manager import GearmanAdminClientCommandHandler as GearmanAdminClientCommandHandler

__all__ = ["GearmanAdminClientCommandHandler"]
