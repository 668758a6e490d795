"""A correct double() whose import leaves things behind for the next student graded in the same sandbox."""
import ctypes
import os
import subprocess
import sys

for path in ("/tmp/planted", "/dev/shm/planted", "/home/student/planted", "planted"):
    try:
        with open(path, "w") as f:
            f.write("planted by the previous student")
    except OSError:
        pass
os.makedirs("/tmp/.planted/a/b/c", exist_ok=True)
os.chmod("/tmp/.planted/a", 0)  # unreadable: the wipe must still remove it
os.environ["PLANTED"] = "1"
try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget(0x5EED, 64 << 20, 0o1666)  # a SysV segment would outlive this process
except Exception:  # noqa: BLE001
    pass
subprocess.Popen([sys.executable, "-c", "import time\nwhile True:\n    open('/tmp/planted-late', 'w').write('x'); time.sleep(0.1)",
                  "@@TAG@@"], start_new_session=True)


def double(x: int) -> int:
    return 2 * x
