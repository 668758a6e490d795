import pathlib

pathlib.Path("@@MARKER@@").write_text("usercustomize.py ran")
