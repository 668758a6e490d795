"""A correct double() whose import tries to start 40 processes: more than the sandbox allows (bounded: no fork bomb)."""
import os
import time

started, refused = 0, 0
for _ in range(40):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    started += 1


def double(x: int) -> int:
    return 2 * x
