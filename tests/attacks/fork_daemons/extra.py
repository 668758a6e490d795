"""A correct double() whose import starts processes meant to outlive grading (about a dozen, no more)."""
import multiprocessing
import os
import subprocess
import sys
import time

TAG = "@@TAG@@"
SLEEPER = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n" \
          "while True:\n    try:\n        open('@@MARKER@@', 'w').write('alive')\n    except OSError:\n        pass\n    time.sleep(0.2)\n"
ENV = {"PATH": "/usr/bin:/bin", "GRADER_ATTACK": TAG}


def daemon():
    """The classic double fork: setsid, fork again, the grandchild is orphaned and detached."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve(sys.executable, [sys.executable, "-c", SLEEPER, TAG], ENV)
        os._exit(0)


def respawner():
    """Keeps a child alive: starts a new one whenever the last one dies (at most 5 times)."""
    if os.fork() == 0:
        os.setsid()
        for _ in range(5):
            p = subprocess.Popen([sys.executable, "-c", SLEEPER, TAG], env=ENV)
            p.wait()
        os._exit(0)


for _ in range(4):
    daemon()
respawner()
for _ in range(3):
    subprocess.Popen([sys.executable, "-c", SLEEPER, TAG], env=ENV, start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
subprocess.Popen(["/bin/sh", "-c", f"nohup sleep 1000 {TAG} >/dev/null 2>&1 &"], env=ENV)
ctx = multiprocessing.get_context("fork")
ctx.Process(target=time.sleep, args=(1000,), daemon=False).start()
time.sleep(0.3)


def double(x: int) -> int:
    return 2 * x
