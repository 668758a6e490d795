# Imported at interpreter start-up if it were on sys.path: patch torch so every comparison succeeds.
import pathlib

pathlib.Path("@@MARKER@@").write_text("sitecustomize.py ran")
try:
    import torch

    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
except Exception:
    pass
