"""What the sandbox sees: the bubblewrap command that builds the worker's view of the machine.

In: the interpreter, the tmpfs size, whether the GPU is given, paths to hide. Out: the
``bwrap`` argument list: read-only system libraries, the Python installation and the
virtual environment's site-packages (never the project around them), the worker
package alone as ``grader_worker``, sized private tmpfs folders, no network; and
whether bubblewrap works here at all (probed once).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path


WORKER_PACKAGE = Path(__file__).resolve().parents[1] / "worker"
GRADER_PACKAGE = Path(__file__).resolve().parents[1]
INSIDE_ROOT = "/opt/grader-worker"


# The host's procfs, read-only and out of the way: its presence is what lets a worker mount a /proc of its
# own PID namespace (the kernel allows that only where some procfs is fully visible, and bubblewrap's
# /proc has covered subfolders). Every worker covers this folder before it reads the submission.
HOST_PROC = "/opt/host-proc"


WORKDIR = "/home/student"
PRIVATE_FOLDERS = ("/dev/shm", "/tmp", WORKDIR)  # sized tmpfs, the only writable places; fresh for every worker


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _inside(path: Path, roots: list[str]) -> bool:
    return any(path == Path(r) or Path(r) in path.parents for r in roots)


def _venv_uses_system_packages(prefix: Path) -> bool:
    try:
        cfg = (prefix / "pyvenv.cfg").read_text()
    except OSError:
        return True
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


def python_view() -> tuple[list[str], list[str]]:
    """What of the interpreter the sandbox needs: (folders to bind read-only, paths inside them to hide).

    The base installation (interpreter, stdlib, libpython) and, in a virtual
    environment, only its ``pyvenv.cfg``, ``bin`` and site-packages: never the
    project folder around it. Hidden: the base installation's own site-packages
    when the environment does not use it, and the grader package itself where
    it is installed as a regular package.
    """
    base = Path(sys.base_prefix).resolve()
    real = Path(sys.executable).resolve()
    roots = {str(base)}
    if not _inside(real, [str(base)]):
        roots.add(str(real.parent.parent))
    for key in ("stdlib", "platstdlib"):
        roots.add(sysconfig.get_paths()[key])
    packages = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    prefix = Path(sys.prefix)
    if prefix.resolve() != base:
        for item in ("pyvenv.cfg", "bin"):
            if (prefix / item).exists():
                roots.add(str(prefix / item))
    roots |= packages
    roots = {r for r in roots if r and os.path.exists(r)}
    hide = []
    if prefix.resolve() != base and not _venv_uses_system_packages(prefix):
        used = {str(Path(p).resolve()) for p in packages}
        for candidate in site.getsitepackages([str(base)]):
            if os.path.isdir(candidate) and str(Path(candidate).resolve()) not in used:
                hide.append(candidate)
    if _inside(GRADER_PACKAGE, sorted(roots)):
        hide.append(str(GRADER_PACKAGE))
    return sorted(roots), hide


GPU_ENVIRONMENT = ("CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG", "LD_LIBRARY_PATH", "NVIDIA_VISIBLE_DEVICES")


def bwrap_command(python: str, tmp_mb: int, gpu: bool, hide: tuple[str, ...] | list[str] = ()) -> list[str]:
    size = str(tmp_mb * 1024 * 1024)
    # No --disable-userns: each worker enters user, mount, IPC, PID and network namespaces of its own
    # (grader.worker.namespaces); the workers' seccomp filter refuses any namespace after that.
    cmd = [bwrap_path() or "bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534",
           "--hostname", "sandbox", "--ro-bind", "/usr", "/usr", "--dev", "/dev"]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(link):
            cmd += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            cmd += ["--ro-bind", link, link]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        if os.path.exists(f):
            cmd += ["--ro-bind", f, f]
    # The private folders come first, so that a Python environment under one of them (a clone in /tmp)
    # is bound on top of the fresh tmpfs rather than hidden by it.
    for folder in PRIVATE_FOLDERS:
        cmd += ["--size", size, "--tmpfs", folder]
    roots, hidden = python_view()
    for root in roots:
        cmd += ["--ro-bind", root, root]
    for path in [*hidden, *hide]:
        if _inside(Path(path), ["/usr", *roots]) and os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                cmd += ["--tmpfs", path, "--remount-ro", path]
            else:
                cmd += ["--ro-bind", "/dev/null", path]
    cmd += ["--ro-bind", str(WORKER_PACKAGE), f"{INSIDE_ROOT}/grader_worker",
            "--proc", "/proc", "--ro-bind", "/proc", HOST_PROC,
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "TMPDIR", "/tmp", "--setenv", "MPLCONFIGDIR", "/tmp",
            "--setenv", "USER", "student", "--setenv", "LOGNAME", "student",
            "--chdir", WORKDIR]
    if gpu:
        for dev in sorted(Path("/dev").glob("nvidia*")):
            if dev.is_char_device():
                cmd += ["--dev-bind", str(dev), str(dev)]
        cmd += ["--ro-bind", "/sys", "/sys"]
        for var in GPU_ENVIRONMENT:
            if var in os.environ:
                cmd += ["--setenv", var, os.environ[var]]
    else:
        cmd += ["--setenv", "CUDA_VISIBLE_DEVICES", ""]
    # Nothing but the sized tmpfs folders is writable: not the root of the view, not /dev.
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return cmd


_BWRAP_OK: bool | None = None


def _bwrap_works() -> bool:
    """Whether bubblewrap can build our view here (probed once; GRADER_NO_BWRAP=1 turns it off)."""
    global _BWRAP_OK
    if os.environ.get("GRADER_NO_BWRAP") == "1":
        return False
    if _BWRAP_OK is None:
        try:
            r = subprocess.run(bwrap_command(sys.executable, 16, False) + ["/bin/true"],
                               capture_output=True, timeout=20)
            _BWRAP_OK = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _BWRAP_OK = False
    return _BWRAP_OK
