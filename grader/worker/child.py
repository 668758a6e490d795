"""One submission's worker: imports the student's files on request and runs probes.

Requests (JSON): ``{"id", "op": "import", "file"}`` or
``{"id", "op": "probe", "probe", "file", "target", "args", "kwargs", "construct", "params"}``.
Replies: ``{"id", "ok": true, "result", "stdout", "stdout_truncated", "events"}`` or
``{"id", "ok": false, "error": {"kind", "message", "traceback"}, ...}``.

``events`` lists what the worker refused since the last reply (a network socket,
a signal to the grader's own processes). An audit hook reports the attempts
made through Python; the seccomp filter the zygote installed refuses the same
calls made any other way (ctypes, a subprocess), silently. Everything in this
process is the student's to change, so these reports are advisory: they can be
hidden, never turned into a success.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import operator
import os
import socket
import sys
import traceback
import types
from typing import Any

from . import protocol, standins
from .probes import PROBES, ProbeFailure, materialising

MAX_EVENTS = 20
_refused: list[str] = []


def _note_refused(detail: str) -> None:
    if len(_refused) < MAX_EVENTS:
        _refused.append(detail)


def install_guard(protected: list[int]) -> None:
    """Refuse (and report) network sockets and signals to the grader's processes made through Python."""
    import socket as socket_module

    families = {int(socket_module.AF_INET): "IPv4", int(socket_module.AF_INET6): "IPv6"}
    if hasattr(socket_module, "AF_PACKET"):
        families[int(socket_module.AF_PACKET)] = "raw packet"
    guarded = frozenset(protected) | {-1}

    def hook(event: str, args: tuple) -> None:
        if event == "socket.__new__":
            family = args[1] if len(args) > 1 else None
            if isinstance(family, int) and family in families:
                _note_refused(f"opened a {families[family]} network socket (no network while grading)")
                raise PermissionError("network access is not available while grading")
        elif event in ("os.kill", "os.killpg"):
            target = args[0] if args else None
            if isinstance(target, int) and (target in guarded or (event == "os.killpg" and -target in guarded)):
                _note_refused(f"{event}({target}, {args[1] if len(args) > 1 else ''}) aimed at the grader's own process")
                raise PermissionError("the grader's processes cannot be signalled")

    sys.addaudithook(hook)


_MISSING = object()
_FUNCTION_STATE = frozenset({"__code__", "__defaults__", "__kwdefaults__"})
# Caches Python and torch fill in on their own (copy/pickle, ABCs): never a student's doing.
_SELF_FILLED = frozenset({"__slotnames__", "_abc_impl", "__abstractmethods__", "_is_protocol"})
# Modules a reply is encoded and sent with (json, numpy's .npy writer, the socket layer, the wire format).
REPLY_PATH_MODULES = ("socket", "_socket", "json.encoder", "numpy.lib.format", "io", "struct")
_REPLY_PATH_PREFIXES = ("socket.", "_socket.", "json.", "numpy.save", "numpy.lib.format.", "grader_worker.protocol.",
                        "io.", "struct.")


def touches_reply_path(changed: str) -> bool:
    """Whether a name the integrity check found changed is part of how replies are encoded and sent."""
    return changed.startswith(_REPLY_PATH_PREFIXES)


# Names that plain torch calls rebind themselves: torch.set_default_dtype replaces torch.Storage.
_REBOUND_BY_API = frozenset({("torch", "Storage"), ("torch", "__warningregistry__")})


class Integrity:
    """Notices and undoes monkeypatching of what the probes rely on.

    It snapshots, before any student code runs, the attribute dictionaries of
    ``nn.Module``, ``Tensor``, ``Parameter`` and every layer class in
    ``torch.nn``; the namespaces of ``builtins``, ``torch``,
    ``torch.nn.functional``, ``numpy`` and the worker's own modules; the probe
    table; and the code objects of the Python functions found there. ``check``
    restores whatever changed and returns what it was. A function's code and
    defaults are not read on every check: reading ``__code__`` is an audited
    event, and with the worker's audit hook in place a check over the few
    thousand functions watched cost more than a millisecond (0.75 s per
    submission). Setting them is audited too, so an audit hook notes when any
    watched function's ``__code__``, ``__defaults__`` or ``__kwdefaults__`` is
    set, and only then are they compared and restored. It stops the casual
    monkeypatch (``nn.Module.parameters = ...``, ``Tensor.numel = ...``,
    ``builtins.sum = ...``, ``PROBES[...] = ...``); code that reads the worker's
    source and goes after this class can still lie about its own results.
    """

    def __init__(self) -> None:
        import builtins

        import numpy
        import torch
        import torch.nn.functional

        from . import probes as probes_module

        classes: list[type] = [torch.nn.Module, torch.Tensor, torch.nn.Parameter, Child, CappedOutput]
        base = getattr(torch._C, "TensorBase", None) or getattr(torch._C, "_TensorBase", None)
        if isinstance(base, type):
            classes.append(base)
        classes += [c for c in vars(torch.nn).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)]
        self.builtin_names = frozenset(vars(builtins))
        self.entries: list[tuple[str, Any, str, dict[str, Any]]] = []
        for cls in dict.fromkeys(classes):
            self.entries.append((cls.__qualname__, cls, "class", dict(vars(cls))))
        # The reply path: what encoding and sending an answer relies on.
        for label, cls in (("socket.socket", socket.socket), ("json.JSONEncoder", json.JSONEncoder)):
            self.entries.append((label, cls, "class", dict(vars(cls))))
        for label in REPLY_PATH_MODULES:
            if label in sys.modules:
                self.entries.append((label, sys.modules[label], "module", dict(vars(sys.modules[label]))))
        if "torch.cuda" in sys.modules:
            self.entries.append(("torch.cuda", sys.modules["torch.cuda"], "module", dict(vars(sys.modules["torch.cuda"]))))
        for module, label in ((builtins, "builtins"), (torch, "torch"), (torch.nn, "torch.nn"),
                              (torch.nn.functional, "torch.nn.functional"), (numpy, "numpy"),
                              (probes_module, "grader_worker.probes"), (protocol, "grader_worker.protocol"),
                              (sys.modules[__name__], "grader_worker.child"), (json, "json"), (inspect, "inspect"),
                              (importlib, "importlib")):
            self.entries.append((label, module, "module", dict(vars(module))))
        # The probes' own modules (one per group, and what they share): their helpers and captured methods.
        for name in sorted(sys.modules):
            if name.startswith(probes_module.__name__ + "."):
                label = "grader_worker.probes" + name[len(probes_module.__name__):]
                self.entries.append((label, sys.modules[name], "module", dict(vars(sys.modules[name]))))
        self.entries.append(("PROBES", PROBES, "mapping", dict(PROBES)))
        self.functions: list[tuple[Any, Any, Any, Any]] = []
        seen: set[int] = set()
        for _, _, _, snapshot in self.entries:
            for value in snapshot.values():
                for fn in (value, getattr(value, "__func__", None), getattr(value, "fget", None)):
                    if isinstance(fn, types.FunctionType) and id(fn) not in seen:
                        seen.add(id(fn))
                        self.functions.append((fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__))
        watched = frozenset(id(fn) for fn, _, _, _ in self.functions)
        touched: list[bool] = []
        self._touched = touched

        def note_function_change(event: str, args: tuple) -> None:
            if event == "object.__setattr__" and len(args) > 1 and type(args[1]) is str and args[1] in _FUNCTION_STATE \
                    and id(args[0]) in watched and not touched:
                touched.append(True)

        sys.addaudithook(note_function_change)

    @staticmethod
    def _dict_of(obj: Any, mode: str) -> Any:
        return obj if mode == "mapping" else vars(obj)

    def _unchanged(self) -> bool:
        """The fast path (loops in C, well under a millisecond): is every watched name as it was, and was no
        watched function's code set since the last check?"""
        for _, obj, mode, snapshot in self.entries:
            current = self._dict_of(obj, mode)
            if len(current) != len(snapshot) or not all(map(operator.is_, map(current.get, snapshot), snapshot.values())):
                return False
        return not self._touched

    def check(self) -> list[str]:
        if self._unchanged():
            return []
        changed: list[str] = []
        for label, obj, mode, snapshot in self.entries:
            current = self._dict_of(obj, mode)
            for key, original in snapshot.items():
                if current.get(key, _MISSING) is not original:
                    if (label, key) in _REBOUND_BY_API and key in current:
                        snapshot[key] = current[key]
                        continue
                    changed.append(f"{label}.{key}")
                    try:
                        if mode == "class":
                            setattr(obj, key, original)
                        else:
                            current[key] = original
                    except Exception:  # noqa: BLE001
                        pass
            for key in [k for k in list(current) if k not in snapshot]:
                if (mode == "module" and (key not in self.builtin_names or label == "builtins")) or \
                        (mode == "class" and key in _SELF_FILLED):
                    # A new name in a module shadows nothing (lazy submodules land here), and caches
                    # are Python's own: watched from now on, like the rest.
                    snapshot[key] = current[key]
                    continue
                changed.append(f"{label}.{key}")
                try:
                    if mode == "class":
                        delattr(obj, key)
                    else:
                        del current[key]
                except Exception:  # noqa: BLE001
                    pass
        # Cleared before comparing: a change made from now on (by another thread, too) is seen by the next
        # check. Putting the originals back sets the flag again, and the next check finds nothing changed.
        self._touched.clear()
        for fn, code, defaults, kwdefaults in self.functions:
            if fn.__code__ is not code or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
                changed.append(f"{fn.__module__}.{fn.__qualname__} (its code)")
                try:
                    fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults
                except Exception:  # noqa: BLE001
                    pass
        return changed


def _safe_str(value: Any, limit: int = 2000) -> str:
    """``str(value)`` that survives a hostile ``__str__`` (one that raises or returns a non-string)."""
    try:
        text = str(value)
        if not isinstance(text, str):
            raise TypeError
    except BaseException:  # noqa: BLE001
        try:
            text = object.__repr__(value)
        except BaseException:  # noqa: BLE001
            text = "<unprintable>"
    return text[:limit]


def _safe_repr(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError
    except BaseException:  # noqa: BLE001
        text = "<unprintable>"
    return text[:limit]


class CappedOutput(io.TextIOBase):
    """Keeps the first ``limit`` characters a submission prints and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        s = s if type(s) is str else _safe_str(s, self.limit + 1)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def take(self) -> tuple[str, bool]:
        text, truncated = "".join(self.parts), self.dropped > 0
        self.parts, self.kept, self.dropped = [], 0, 0
        return text, truncated


def _trimmed_traceback(exc: BaseException, folder: str) -> str:
    """The traceback frames that are in the student's own files, and the exception line."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(f.filename).startswith(folder)]
        lines = traceback.format_list(frames) + [f"{type(exc).__name__}: {_safe_str(exc)}\n"]
        return "".join(lines).replace(folder + "/", "")[-4000:]
    except BaseException:  # noqa: BLE001 - a hostile exception must not take the worker down
        return f"{type(exc).__name__}: {_safe_str(exc)}"


def _error(kind: str, message: str, exc: BaseException | None, folder: str) -> dict[str, Any]:
    return {"kind": kind, "message": str(message)[:2000], "traceback": _trimmed_traceback(exc, folder) if exc else ""}


class Child:
    def __init__(self, sock: socket.socket, folder: str, output_limit: int) -> None:
        self.sock = sock
        self.folder = folder
        self.out = CappedOutput(output_limit)
        self.integrity: Integrity | None = None
        self.reply_path_changed: list[str] = []

    def restore(self) -> list[str]:
        """Undo monkeypatching of torch, builtins or the worker; report each change once as refused."""
        if self.integrity is None:
            return []
        changed = self.integrity.check()
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            _note_refused(f"your code replaced {shown}; the original was put back before measuring")
            self.reply_path_changed += [c for c in changed if touches_reply_path(c)]
        return changed

    def reply_path_tampering(self) -> list[str]:
        """What changed in the reply path since the last reply (already put back), and tracing hooks set."""
        found, self.reply_path_changed = self.reply_path_changed, []
        if sys.gettrace() is not None or sys.getprofile() is not None:
            found.append("a trace or profile hook (sys.settrace / sys.setprofile)")
            sys.settrace(None)
            sys.setprofile(None)
        return found

    def import_file(self, file: str) -> Any:
        name = file[:-3] if file.endswith(".py") else file
        return importlib.import_module(name)

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "import":
            try:
                self.import_file(req["file"])
            except MemoryError as e:
                return {"ok": False, "error": _error("memory", "ran out of memory while importing", e, self.folder)}
            except SystemExit as e:
                return {"ok": False, "error": _error("import", f"{req['file']} called sys.exit({_safe_repr(e.code)}) while being imported", None, self.folder)}
            except BaseException as e:  # noqa: BLE001 - a student's module may raise anything
                return {"ok": False, "error": _error("import", f"{req['file']} failed to import: {type(e).__name__}: {_safe_str(e)}", e, self.folder)}
            return {"ok": True, "result": {}}
        if op == "probe":
            return self.run_probe(req)
        return {"ok": False, "error": {"kind": "protocol", "message": f"unknown op {op!r}", "traceback": ""}}

    def substitution(self, request: dict[str, Any] | None) -> standins.Substitution | None:
        """The course's stand-ins in place of the named blocks in every module of the submission, if asked."""
        if not request:
            return None
        originals = {}
        for name, file in request["replace"].items():
            try:
                original = getattr(self.import_file(file), name, None)
            except BaseException:  # noqa: BLE001 - that file's own tests report its import error
                continue
            if original is not None:
                originals[name] = original
        folder = os.path.realpath(self.folder)
        mine = [m for m in list(sys.modules.values())
                if os.path.realpath(getattr(m, "__file__", None) or "/").startswith(folder + os.sep)]
        return standins.Substitution(mine, originals, standins.load(request["source"]))

    def run_probe(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            module = self.import_file(req["file"])
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error": _error("import", f"{req['file']} failed to import: {type(e).__name__}: {_safe_str(e)}", e, self.folder)}
        substitution = self.substitution(req.get("stand_ins"))
        if substitution is None:
            return self._run_probe(req, module)
        with substitution:
            reply = self._run_probe(req, module)
        return {**reply, "stand_ins_built": substitution.built}

    def _run_probe(self, req: dict[str, Any], module: Any) -> dict[str, Any]:
        target_name = req["target"]
        target = getattr(module, target_name, None)
        if target is None:
            return {"ok": False, "error": _error("missing", f"{req['file']} defines no {target_name}", None, self.folder)}
        if req.get("kind", "class") == "class" and not inspect.isclass(target):
            return {"ok": False, "error": _error("not_class", f"{target_name} is a {type(target).__name__}, not a class", None, self.folder)}
        if req.get("kind") == "function" and not callable(target):
            return {"ok": False, "error": _error("not_callable", f"{target_name} is not callable", None, self.folder)}
        args, kwargs = req.get("args", []), req.get("kwargs", {})
        construct = req.get("construct", True)

        def build() -> Any:
            try:
                built = target(*args, **kwargs) if construct else target
            except NotImplementedError:
                raise
            except TypeError as e:
                raise _ConstructionError(e) from e
            finally:
                self.restore()  # whatever the constructor patched is undone before the probe measures
            return built

        fn = PROBES.get(req["probe"])
        if fn is None:
            return {"ok": False, "error": {"kind": "protocol", "message": f"unknown probe {req['probe']!r}", "traceback": ""}}
        materialised: list[list[int]] = []
        try:
            result = fn(materialising(build, req.get("dry_run_input"), materialised), **req.get("params", {}))
        except _ConstructionError as e:
            call = f"{target_name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})"
            return {"ok": False, "error": _error("signature", f"{call} raised TypeError: {_safe_str(e.__cause__)}", e.__cause__, self.folder)}
        except NotImplementedError as e:
            return {"ok": False, "error": _error("not_implemented", f"{target_name} is not implemented yet ({_safe_str(e)})", e, self.folder)}
        except ProbeFailure as e:
            return {"ok": False, "error": _error("wrong_type", _safe_str(e), None, self.folder)}
        except MemoryError as e:
            return {"ok": False, "error": _error("memory", "ran out of memory", e, self.folder)}
        except SystemExit as e:
            return {"ok": False, "error": _error("exit", f"your code called sys.exit({_safe_repr(e.code)})", None, self.folder)}
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error": _error("exception", f"{type(e).__name__}: {_safe_str(e)}", e, self.folder)}
        finally:
            during = self.restore()
        if during:
            return {"ok": False, "error": _error(
                "refused", f"your code replaced {', '.join(during[:3])} while it was being measured; "
                "the measurement cannot be trusted, so this check fails", None, self.folder)}
        return {"ok": True, "result": result, "materialised": materialised}

    def serve(self) -> None:
        while True:
            try:
                req = protocol.recv(self.sock)
            except protocol.ChannelClosed:
                return
            try:
                reply = self.handle(req)
            except BaseException as e:  # noqa: BLE001 - e.g. a hostile exception escaping a handler
                reply = {"ok": False, "error": _error("exception", f"{type(e).__name__}: {_safe_str(e)}", None, self.folder)}
            self.restore()  # nothing the student patched may change how this reply is encoded or the next one read
            tampered = self.reply_path_tampering()
            if tampered:
                # Whatever the answer was, it was computed while the way it is sent was in the student's hands.
                reply = {"ok": False, "error": {"kind": "reply_path", "message": (
                    f"your code changed how the worker sends its answers ({', '.join(tampered[:3])}); no answer "
                    "from this worker can be trusted, so this check fails and the worker is replaced"),
                    "traceback": ""}}
            text, truncated = self.out.take()
            events = [{"kind": "refused", "detail": d} for d in _refused]
            _refused.clear()
            meta = {"id": req.get("id"), "stdout": text, "stdout_truncated": truncated, "events": events}
            try:
                protocol.send(self.sock, {**reply, **meta})
            except (TypeError, ValueError, RecursionError) as e:
                protocol.send(self.sock, {**meta, "ok": False, "error": {
                    "kind": "exception", "message": f"result could not be sent: {_safe_str(e, 300)}", "traceback": ""}})


class _ConstructionError(Exception):
    pass


def run(sock: socket.socket, folder: str, output_limit: int, protected: list[int] | None = None) -> None:
    if protected is not None:
        install_guard(protected)
    child = Child(sock, folder, output_limit)
    child.integrity = Integrity()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = child.out  # type: ignore[assignment]
    sys.stdin = io.StringIO()
    sys.path.insert(0, folder)
    os.chdir(folder)
    child.serve()
