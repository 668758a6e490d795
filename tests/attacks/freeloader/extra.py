"""A correct double() that also searches its own memory for what an earlier student held in its heap."""
import os

# Searched as two parts never joined here, so this module's own constants are not a hit.
HEAD = bytes([35]) + b"DONOR-PAYLOAD"
TAIL = b"\nimport torch\nimport torch.nn as nn"


def memory_hits():
    hits = 0
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "rw" not in fields[1] or (len(fields) > 5 and fields[5].startswith("/")):
                continue  # only anonymous writable memory: the heap and what the zygote left there
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if end - start > 512 << 20:
                continue
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            at = data.find(HEAD)
            while at >= 0:
                hits += data[at + len(HEAD):at + len(HEAD) + len(TAIL)] == TAIL
                at = data.find(HEAD, at + 1)
    return hits


def double(x: int) -> int:
    print("SEEN:", ["memory"] if memory_hits() else [])
    return 2 * x
