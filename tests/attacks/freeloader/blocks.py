"""The unfinished skeleton plus a loader that runs whatever an earlier student left behind.

It looks where the donor case leaves its sources (files in every folder it can
read, descriptors of every process it can see, POSIX and SysV message queues,
SysV shared memory, an abstract Unix socket, the environment); whatever it
finds defines SkipBlock here. It prints what it found, so the test can show
that graded after the donor it finds nothing.
"""
import ctypes
import os
import socket

import torch
import torch.nn as nn

MARK = "#DONOR" + "-PAYLOAD\n"
FOUND = []


def _take(where, data):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    start = data.find(MARK)
    if start >= 0:
        FOUND.append((where, data[start + len(MARK):].split(MARK)[0]))


def _files():
    for root, dirs, files in os.walk("/", topdown=True):
        if root.startswith(("/proc", "/sys", "/usr")) or root.count("/") > 4:
            dirs[:] = []
            continue
        if "donor-payload.py" in files:
            try:
                _take(os.path.join(root, "donor-payload.py"), open(os.path.join(root, "donor-payload.py"), "rb").read())
            except OSError:
                pass


def _descriptors():
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                handle = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
                os.lseek(handle, 0, os.SEEK_SET)
                _take(f"/proc/{pid}/fd/{fd}", os.read(handle, 1 << 20))
                os.close(handle)
            except OSError:
                pass


def _ipc():
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        mq = rt.mq_open(b"/donor-payload", os.O_RDONLY | os.O_NONBLOCK)
        if mq >= 0:
            buf, parts = ctypes.create_string_buffer(1 << 16), []
            while True:
                n = rt.mq_receive(mq, buf, 1 << 16, None)
                if n <= 0:
                    break
                parts.append(buf.raw[:n])
            _take("POSIX message queue", b"".join(parts))
    except OSError:
        pass
    libc.shmat.restype = ctypes.c_void_p
    shm = libc.shmget(0xD0D0, 0, 0)
    if shm >= 0:
        address = libc.shmat(shm, None, 0o10000)
        if address not in (None, ctypes.c_void_p(-1).value):
            _take("SysV shared memory", ctypes.string_at(address, 1 << 16))
    queue = libc.msgget(0xD0D1, 0)
    if queue >= 0:
        message = ctypes.create_string_buffer(8 + (1 << 16))
        n = libc.msgrcv(queue, message, 1 << 16, 0, 0o4000)
        if n > 0:
            _take("SysV message queue", message.raw[8:8 + n])


def _socket():
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect("\0donor-payload")
        _take("abstract socket", MARK + s.recv(1 << 20).decode())
    except OSError:
        pass


def _environment():
    if "DONOR_PAYLOAD" in os.environ:
        _take("environment", MARK + os.environ["DONOR_PAYLOAD"])


for look in (_files, _descriptors, _ipc, _socket, _environment):
    try:
        look()
    except Exception:  # noqa: BLE001
        pass
print("SEEN:", sorted(where for where, _ in FOUND))


class SkipBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        raise NotImplementedError


for _, code in FOUND[:1]:
    exec(compile(code, "<found>", "exec"), globals())
