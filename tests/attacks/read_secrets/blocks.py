"""Looks everywhere for the reference solution and the hidden tests; uses them if found."""
import os
import time

import torch
import torch.nn as nn

REPO = "@@REPO@@"
TARGETS = [
    REPO + "/tests/attacks/_course/reference/blocks.py",
    REPO + "/tests/attacks/_course/reference/extra.py",
    REPO + "/tests/fixtures/minicourse/reference/blocks.py",
    REPO + "/tests/fixtures/minicourse/hidden/test_blocks.py",
    REPO + "/reference/day09/resnet.py",
    REPO + "/courses/day09/assignment.toml",
    REPO + "/grader/grading/engine.py",
    "/proc/1/root" + REPO + "/tests/attacks/_course/reference/blocks.py",
    f"/proc/{os.getppid()}/cwd/reference/blocks.py",
    f"/proc/{os.getppid()}/root" + REPO + "/tests/attacks/_course/reference/blocks.py",
    f"/proc/{os.getppid()}/environ",
]
WANTED_NAMES = {"test_blocks.py", "assignment.toml", "results.json", "grading.json", "suite.ini", "engine.py"}
SKIP = {"/proc", "/sys", "/dev", "/usr"}
leaks = []
for path in TARGETS:
    try:
        with open(path, "rb") as f:
            leaks.append((path, f.read()))
    except OSError:
        pass
deadline = time.monotonic() + 1.5
for root, dirs, files in os.walk("/"):
    if time.monotonic() > deadline:
        break
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in SKIP and d != "site-packages"
               and not os.path.join(root, d).startswith("/root/.pyenv")]
    for name in files:
        path = os.path.join(root, name)
        if name in WANTED_NAMES or (name == "blocks.py" and not path.startswith(os.getcwd())):
            try:
                leaks.append((path, open(path, "rb").read()))
            except OSError:
                pass
for path, data in leaks:
    print("LEAK:", path)
    if path.endswith("blocks.py") and b"class SkipBlock" in data:
        exec(compile(data, "stolen", "exec"))  # would define the reference SkipBlock
if "SkipBlock" not in globals():

    class SkipBlock(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if leaks:
                print("LEAK:", [path for path, _ in leaks])
            return x
