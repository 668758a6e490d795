"""Whether this machine has a CUDA GPU torch can use, asked without importing torch where it has none."""

from __future__ import annotations

import os
from pathlib import Path


def cuda_usable() -> bool:
    """Whether submissions get the GPU, decided without initialising CUDA in this process.

    ``torch.cuda.is_available()`` would start the CUDA driver here, and CUDA cannot
    be used in a process forked after that. So: no when ``CUDA_VISIBLE_DEVICES`` is
    empty or -1, when torch is a CPU build, or when there are no ``/dev/nvidia*``
    devices; otherwise a short-lived forked child asks torch and exits.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if not any(Path("/dev").glob("nvidia[0-9]*")):   # asked before importing torch, which costs seconds
        return False
    import torch

    if torch.version.cuda is None:
        return False
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child only answers through its exit status
        code = 1
        try:
            code = 0 if torch.cuda.is_available() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
