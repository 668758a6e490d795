import os

for path in ("@@REPO@@/tests/attacks/_course/reference/extra.py", "/proc/1/root@@REPO@@/tests/attacks/_course/reference/extra.py"):
    try:
        exec(compile(open(path).read(), "stolen", "exec"))
        print("LEAK:", path)
    except OSError:
        pass
if "double" not in globals():

    def double(x: int) -> int:
        return x  # wrong on purpose: only a stolen reference would make it right
