"""PEP 8 aliases for the PECL camelCase API, made from one table per class."""
from __future__ import annotations

import re
from typing import Iterable

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def pep8_name(name: str) -> str:
    """``doHighBackground`` -> ``do_high_background``."""
    return _CAMEL.sub(r"_\1", name).lower()


def add_pep8_aliases(cls: type, pecl_names: Iterable[str]) -> type:
    """Give ``cls`` a snake_case alias for each PECL method name (same function object)."""
    for name in pecl_names:
        alias = pep8_name(name)
        if alias != name and alias not in cls.__dict__:
            setattr(cls, alias, getattr(cls, name))
    return cls


#: PECL method names of each class; the PEP 8 aliases come from these lists only.
CLIENT_METHODS = (
    "addServer", "addServers", "doNormal", "doHigh", "doLow", "doBackground",
    "doHighBackground", "doLowBackground", "doJobHandle", "doStatus", "jobStatus",
    "jobStatusByUniqueKey", "returnCode", "getErrno", "setTimeout", "setOptions",
    "addOptions", "removeOptions", "setContext", "enableExceptionHandler",
    "addTask", "addTaskHigh", "addTaskLow", "addTaskBackground", "addTaskHighBackground",
    "addTaskLowBackground", "addTaskStatus", "runTasks", "setCreatedCallback",
    "setDataCallback", "setWarningCallback", "setStatusCallback", "setCompleteCallback",
    "setFailCallback", "setExceptionCallback", "setWorkloadCallback", "clearCallbacks",
)
TASK_METHODS = (
    "functionName", "jobHandle", "isKnown", "isRunning", "taskNumerator",
    "taskDenominator", "dataSize", "returnCode", "sendWorkload", "recvData",
)
WORKER_METHODS = (
    "addServer", "addServers", "addFunction", "returnCode", "getErrno", "setTimeout",
    "setId", "setOptions", "addOptions", "removeOptions", "unregisterAll", "grabJob",
    "enableExceptionHandler",
)
JOB_METHODS = (
    "functionName", "workloadSize", "sendData", "sendWarning", "sendStatus", "sendComplete",
    "sendFail", "sendException", "returnCode", "setReturn",
)
