"""A correct double() whose import tries to start 40 processes: more than the sandbox allows (bounded: no fork bomb).

It spawns them with posix_spawn (cheap, unlike forking a process that holds
torch), so that the import stays within its limit on a busy machine.
"""
import os

started, refused = 0, 0
for _ in range(40):
    try:
        os.posix_spawn("/bin/sleep", ["sleep", "30", "@@TAG@@"], {})
        started += 1
    except OSError:
        refused += 1


def double(x: int) -> int:
    return 2 * x
