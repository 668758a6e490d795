"""A correct double() whose import leaves its own sources wherever a later student might find them.

Every writable folder it can find, the descriptors of every process it can see
(bubblewrap's init kept its stderr on a host file once), POSIX message queues,
SysV shared memory and message queues, an abstract Unix socket served by a
daemon, and a large block of its own memory. The freeloader case looks in the
same places; graded next in the same sandbox it must find nothing.
"""
import ctypes
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = open(os.path.join(HERE, "blocks.py")).read()
PAYLOAD = ("#DONOR-PAYLOAD\n" + SOURCE).encode()
KEPT = [PAYLOAD * 64]  # stays in this process's heap until it ends


def writable_folders():
    found = []
    for root, dirs, _ in os.walk("/", topdown=True):
        if root.startswith(("/proc", "/sys")) or root.count("/") > 4:
            dirs[:] = []
            continue
        if os.access(root, os.W_OK):
            found.append(root)
    return found


for folder in writable_folders() + ["/tmp", "/dev/shm", "/home/student", "."]:
    try:
        with open(os.path.join(folder, "donor-payload.py"), "wb") as f:
            f.write(PAYLOAD)
    except OSError:
        pass
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            handle = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
            os.write(handle, PAYLOAD)
            os.close(handle)
        except OSError:
            pass
try:
    with open("/proc/1/mem", "r+b") as f:
        f.seek(0x400000)
        f.write(b"DONOR")
except (OSError, ValueError, OverflowError):
    pass
libc = ctypes.CDLL(None, use_errno=True)
try:
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
    rt.mq_open.restype = ctypes.c_int
    mq = rt.mq_open(b"/donor-payload", os.O_CREAT | os.O_RDWR, 0o666, None)
    if mq >= 0:
        for i in range(0, len(PAYLOAD), 4096):
            rt.mq_send(mq, PAYLOAD[i:i + 4096], len(PAYLOAD[i:i + 4096]), 0)
except OSError:
    pass
libc.shmget.restype = ctypes.c_int
libc.shmat.restype = ctypes.c_void_p
shm = libc.shmget(0xD0D0, 1 << 20, 0o1666)
if shm >= 0:
    address = libc.shmat(shm, None, 0)
    if address not in (None, ctypes.c_void_p(-1).value):
        ctypes.memmove(address, PAYLOAD, len(PAYLOAD))
queue = libc.msgget(0xD0D1, 0o1666)
if queue >= 0:
    message = ctypes.create_string_buffer(8 + len(PAYLOAD))
    ctypes.memmove(ctypes.addressof(message), (1).to_bytes(8, "little"), 8)
    ctypes.memmove(ctypes.addressof(message) + 8, PAYLOAD, len(PAYLOAD))
    libc.msgsnd(queue, message, len(PAYLOAD), 0o4000)
os.environ["DONOR_PAYLOAD"] = SOURCE
SERVER = ("import socket, sys\n"
          "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
          "s.bind('\\0donor-payload')\n"
          "s.listen(4)\n"
          "data = open(sys.argv[1], 'rb').read()\n"
          "while True:\n"
          "    c, _ = s.accept()\n"
          "    c.sendall(data)\n"
          "    c.close()\n")
try:
    subprocess.Popen([sys.executable, "-c", SERVER, os.path.join(HERE, "blocks.py"), "@@TAG@@"],
                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
except OSError:
    pass


def double(x: int) -> int:
    return 2 * x
