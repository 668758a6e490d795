"""The attack corpus: hostile submissions graded in one sandbox, each with what it must (not) achieve.

Every case in ``tests/attacks/<case>/`` is a submission for the two-file course
in ``tests/attacks/_course`` (see the README there). For each one this file
asserts that grading finishes; the score is exactly what the submission earns
honestly; the reference graded next in the same session still gets 100%; no
file outside the worker's private folders changed (the repository's course,
reference, fixture and corpus folders are hashed before and after, and the
marker file each attack tries to create on the host does not exist); no process
the submission started survives (the sandbox's cgroup is back to bubblewrap and
the zygote, and no process on the machine carries the case's tag); and the
result says what happened, with flags for limits and refusals and never a
"refused" flag for a plain bug.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import socket
import stat
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from grader.grading.engine import GradingSession
from grader.intake.ingest import ingest
from grader.results import Outcome, SubmissionResult, save
from grader.grading.view import _bwrap_works, bwrap_path
from grader.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "attacks"
COURSE = CORPUS / "_course"
REFERENCE = COURSE / "reference"
WATCHED = [ROOT / "courses", ROOT / "reference", ROOT / "submissions", ROOT / "tests" / "fixtures", CORPUS,
]
TEXT_SUFFIXES = {".py", ".toml", ".ini", ".cfg", ".pth", ".txt", ".attack"}

pytestmark = pytest.mark.skipif(not (bwrap_path() and _bwrap_works()),
                                reason="the attack corpus is only run inside bubblewrap (it sends real signals)")


# --------------------------------------------------------------------------- expectations

def _flag_for(r: SubmissionResult, kind: str, test: str | None = None, text: str = "") -> bool:
    return any(f.kind == kind and (test is None or f.test == test) and text in f.detail for f in r.flags)


def _outcome(r: SubmissionResult, nodeid: str) -> Outcome:
    return next(t.outcome for t in r.tests if t.nodeid == nodeid)


def _problem(r: SubmissionResult, text: str, file: str | None = None) -> bool:
    return any(text in f"{p.message}\n{p.detail}" and (file is None or p.file == file) for p in r.problems)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


@dataclass
class Case:
    score: float
    why: str
    flags: set[str] = field(default_factory=set)     # kinds that must be present
    plain_bug: bool = False                          # then no "refused" flag may appear
    check: Callable[[SubmissionResult, dict[str, Any]], None] | None = None
    max_seconds: float = 30.0
    ingested: bool = False                           # read through grader.intake.ingest first, as `grader run` does


def _hijack(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _outcome(r, "test_equivalence") is Outcome.failed  # the real suite ran and judged the missing skip


def _sys_exit(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _problem(r, "sys.exit(0)", "extra.py")
    assert _outcome(r, "test_double") is Outcome.error
    assert _outcome(r, "test_param_count") is Outcome.passed


def _os_exit(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _problem(r, "ended the worker process", "extra.py")
    assert _outcome(r, "test_param_count") is Outcome.passed


def _signals(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _flag_for(r, "refused", text="grader's own process")
    # Asking the kernel to signal an I/O owner (fcntl F_SETOWN / F_SETOWN_EX, ioctl FIOSETOWN / SIOCSPGRP) is refused.
    [line] = [line for t in r.tests for line in t.stdout.splitlines() if line.startswith("ATTEMPTS:")][:1] or [""]
    for how in ("F_SETOWN", "F_SETOWN_EX", "FIOSETOWN", "SIOCSPGRP"):
        assert f"{how} of the parent: PermissionError" in line, line
    assert ctx["generation_after"] == ctx["generation_before"], "the zygote was killed and had to be restarted"


def _monkeypatch(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _flag_for(r, "refused", text="replaced")
    assert _outcome(r, "test_param_count") is Outcome.failed


def _forged(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _problem(r, "", "blocks.py")
    assert any(f.kind == "refused" and ("another request" in f.detail or "malformed" in f.detail) for f in r.flags)


def _network(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert ctx["server"].connections == 0 and ctx["server"].datagrams == 0
    assert _flag_for(r, "refused", text="network socket")


def _loops(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    for test in ("test_double", "test_equivalence", "test_shape"):
        assert _outcome(r, test) is Outcome.error
    for test in ("test_double", "test_equivalence"):
        assert _flag_for(r, "timeout", test=test), (test, r.flags)
    # the second test needing the same forward fails at once: the time limit is charged once per class
    assert "charged once" in next(t.message for t in r.tests if t.nodeid == "test_shape")
    assert _outcome(r, "test_param_count") is Outcome.passed
    assert _problem(r, "did not finish within 3 s", "extra.py")


def _loop_init(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert [f.test for f in r.flags if f.kind == "timeout"] == ["test_shape"]


def _memory(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _flag_for(r, "memory")
    assert _outcome(r, "test_equivalence") is Outcome.error
    assert "memory" in next(t.message for t in r.tests if t.nodeid == "test_equivalence")


def _process_limit(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _flag_for(r, "refused", text="process limit")


def _print_flood(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _flag_for(r, "output")
    limit = ctx["spec"].limits.output_bytes
    assert all(len(t.stdout) <= limit + 100 for t in r.tests)


def _escapes(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    text = _strings(r.model_dump())
    assert any("<img src=x onerror=alert(1)>" in s for s in text)  # kept as text: the report escapes it
    assert any("<script>" in s for s in text)
    bad = [s for s in text if any(c in s for c in "\x1b\x00\x07\x08\r\u202e") or any(0xD800 <= ord(c) <= 0xDFFF for c in s)]
    assert not bad, bad[:3]
    assert any("\\x1b[31m" in s for s in text)  # control characters are shown, escaped


def _symlinks(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _problem(r, "extra.py (a symbolic link")
    assert _problem(r, "passwd (a symbolic link")
    assert _problem(r, "lib/ (a symbolic link to a folder")
    assert _problem(r, "missing", "extra.py")


def _bad_bytes(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _problem(r, "not valid UTF-8 text", "blocks.py")
    assert _problem(r, "\\xff\\xfe.py (the file name is not valid UTF-8")


def _special(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _problem(r, "fifo.py (not a regular file)")
    assert _problem(r, "sock (not a regular file)")
    assert _problem(r, "nested deeper than")
    assert _problem(r, "big.bin (over the size")


def _not_a_class(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert "SkipBlock is a function, not a class" in next(t.message for t in r.tests if t.nodeid == "test_param_count")


def _reply_liar(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _flag_for(r, "refused", text="changed how the worker sends its answers"), r.flags
    assert all(t.outcome is not Outcome.passed for t in r.tests)


def _no_flags(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert not r.flags, r.flags


def _symlinked_zip(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert _problem(r, "day09.zip (a symbolic link"), r.problems
    assert _problem(r, "missing", "blocks.py")


def _other(r: SubmissionResult, ctx: dict[str, Any]) -> None:
    assert ctx["other_hash"] == _tree_hash(ctx["other"])


CASES: dict[str, Case] = {
    "pytest_hijack": Case(8, "conftest.py, pytest.ini, pyproject.toml, setup.cfg, tox.ini, sitecustomize.py, "
                             "usercustomize.py and a .pth change nothing", plain_bug=True, check=_hijack),
    "sys_exit_import": Case(8, "sys.exit(0) at import costs that file's points; the run goes on",
                            plain_bug=True, check=_sys_exit),
    "os_exit_import": Case(8, "os._exit(0) at import costs that file's points; the run goes on",
                           flags={"crash"}, plain_bug=True, check=_os_exit),
    "signals_atexit": Case(10, "signals to the zygote, its group, init and kill(-1) are refused; atexit traps never run",
                           flags={"refused"}, check=_signals),
    "eq_override": Case(0, "__eq__/__bool__/__torch_function__ and a lying .shape earn nothing"),
    "monkeypatch": Case(2, "patching nn.Module.parameters, Tensor.numel, builtins, torch/numpy comparisons and the "
                           "probe table earns nothing", flags={"refused"}, check=_monkeypatch),
    "stack_frames": Case(2, "the caller's frames and the heap hold nothing of the reference"),
    "forged_reply": Case(2, "frames written onto the request socket are refused; the output folder is not reachable",
                         flags={"refused"}, check=_forged),
    "read_secrets": Case(2, "the reference, the hidden suite, the courses and the grader are not visible"),
    "other_student": Case(10, "another student's folder can be neither read nor changed", check=_other),
    "network": Case(10, "no socket reaches the host, by Python, libc, a subprocess, urllib or DNS",
                    flags={"refused"}, check=_network),
    "loops": Case(4, "loops at import and in forward lose those tests within the limit; the rest scores",
                  flags={"timeout"}, plain_bug=True, check=_loops),
    "loop_init": Case(8, "a constructor that never returns loses that test only", flags={"timeout"},
                      plain_bug=True, check=_loop_init),
    "memory": Case(6, "allocating until stopped is stopped at the memory limit; other tests score",
                   flags={"memory"}, plain_bug=True, check=_memory),
    "fork_daemons": Case(10, "double-forked setsid daemons, respawners, nohup and multiprocessing do not survive"),
    "process_limit": Case(10, "forks past the pids limit are refused and reported", flags={"refused"},
                          check=_process_limit),
    "print_flood": Case(10, "hundreds of MB printed: bounded time, output capped and flagged", flags={"output"},
                        plain_bug=True, check=_print_flood),
    "huge_file": Case(10, "a huge file stops at the tmpfs size; nothing outside is writable"),
    "escapes": Case(6, "HTML and terminal escapes are stored as text with control characters escaped",
                    plain_bug=True, check=_escapes),
    "symlinks": Case(8, "links (to the reference, /etc/passwd, a folder) are left out, never followed",
                     plain_bug=True, check=_symlinks),
    "symlinked_zip": Case(0, "a day09.zip that is a link to another student's zip is left out and named, never opened",
                          plain_bug=True, check=_symlinked_zip, ingested=True),
    "default_dtype": Case(8, "torch.set_default_dtype(torch.float64) is a plain API call: no flag (float32 inputs then "
                             "fail the shape test, the student's own doing)",
                          plain_bug=True, check=_no_flags),
    "reply_liar": Case(0, "patching socket.socket.sendall to turn every answer into a pass earns nothing: the worker "
                          "sends through the socket methods it captured, fails the request and is replaced",
                       flags={"refused"}, check=_reply_liar),
    "bad_bytes": Case(2, "a non-UTF-8 file and a non-UTF-8 name: a clear message, the rest is graded",
                      plain_bug=True, check=_bad_bytes),
    "special_files": Case(10, "FIFOs, sockets, deep nesting and oversize files are left out without blocking",
                          plain_bug=True, check=_special),
    "not_a_class": Case(2, "a class that is a function: a clear message, the rest is graded", plain_bug=True,
                        check=_not_a_class),
}


# --------------------------------------------------------------------------- helpers

def _tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    if not folder.exists():
        return "absent"
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        rel = str(path.relative_to(folder)).encode("utf-8", "surrogateescape")
        digest.update(rel + b"\0")
        if path.is_symlink():
            digest.update(b"L" + os.readlink(path).encode("utf-8", "surrogateescape"))
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _host_state() -> dict[str, str]:
    return {str(p): _tree_hash(p) for p in WATCHED} | {"repo-top": repr(sorted(os.listdir(ROOT)))}


def _tagged_processes(tag: str) -> list[int]:
    """Processes anywhere on this machine whose command line or environment carries ``tag``."""
    found, needle = [], tag.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                if needle in Path(f"/proc/{entry}/{name}").read_bytes():
                    found.append(int(entry))
                    break
            except OSError:
                pass
    return found


def materialize(case: str, dest: Path, values: dict[str, str]) -> Path:
    """Copy a case, fill in its placeholders and drop the ``.attack`` suffixes."""
    source = CORPUS / case
    dest.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or path.is_dir():
            continue
        rel = path.relative_to(source)
        target = dest / (str(rel)[: -len(".attack")] if path.name.endswith(".attack") else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        if path.suffix in TEXT_SUFFIXES:
            for key, value in values.items():
                data = data.replace(f"@@{key}@@".encode(), value.encode())
        target.write_bytes(data)
    return dest


def _special_setup(case: str, folder: Path) -> None:
    if case == "symlinks":
        (folder / "extra.py").symlink_to(REFERENCE / "extra.py")
        (folder / "passwd").symlink_to("/etc/passwd")
        (folder / "lib").symlink_to(ROOT / "grader")
    elif case == "symlinked_zip":
        import zipfile

        (folder / "README.md").unlink()
        elsewhere = folder.parent / "elsewhere"
        elsewhere.mkdir()
        with zipfile.ZipFile(elsewhere / "bob.zip", "w") as zf:
            for name in ("blocks.py", "extra.py"):
                zf.write(REFERENCE / name, f"day09/{name}")
        (folder / "day09.zip").symlink_to(elsewhere / "bob.zip")
    elif case == "bad_bytes":
        (folder / os.fsdecode(b"\xff\xfe.py")).write_bytes(b"x = 1\n")
    elif case == "special_files":
        os.mkfifo(folder / "fifo.py")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(folder / "sock"))
        sock.close()
        deep = folder
        for i in range(40):
            deep = deep / f"d{i}"
        deep.mkdir(parents=True)
        (deep / "blocks.py").write_text("raise SystemExit('never read')\n")
        (folder / "big.bin").write_bytes(b"\0" * (6 << 20))
        (folder / "empty.py").write_bytes(b"")


class Server:
    """A TCP and UDP listener on 127.0.0.1 that counts whoever reaches it."""

    def __init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind(f"\0grader-attack-{self.port}")
        self.abstract.listen(4)
        self.connections = 0
        self.datagrams = 0
        self._stop = False
        for target in (self._accept_tcp, self._accept_abstract, self._recv_udp):
            threading.Thread(target=target, daemon=True).start()

    def _accept_tcp(self) -> None:
        self._accept(self.tcp)

    def _accept_abstract(self) -> None:
        self._accept(self.abstract)

    def _accept(self, listener: socket.socket) -> None:
        listener.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def _recv_udp(self) -> None:
        self.udp.settimeout(0.2)
        while not self._stop:
            try:
                self.udp.recvfrom(100)
            except OSError:
                continue
            self.datagrams += 1

    def close(self) -> None:
        self._stop = True
        time.sleep(0.3)
        for s in (self.tcp, self.udp, self.abstract):
            s.close()


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def spec():
    return load_spec(COURSE)


@pytest.fixture(scope="module")
def session(spec):
    with GradingSession(spec) as s:
        reference = s.grade(REFERENCE)
        assert reference.score == reference.max_score == 10, reference
        yield s


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


def _values(tmp_path: Path, server: Server) -> dict[str, str]:
    other = tmp_path / "other-student"
    shutil.copytree(REFERENCE, other)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"score": 0}')
    return {"REPO": str(ROOT), "MARKER": str(tmp_path / "marker"), "OTHER": str(other), "OUT": str(out),
            "PORT": str(server.port), "TAG": f"graderattack{uuid.uuid4().hex[:12]}"}


def _wait_gone(tag: str, seconds: float = 2.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        left = _tagged_processes(tag)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


# --------------------------------------------------------------------------- the corpus

@pytest.mark.parametrize("case", sorted(CASES))
def test_attack(case: str, session: GradingSession, spec, server: Server, tmp_path: Path) -> None:
    expected = CASES[case]
    values = _values(tmp_path, server)
    folder = materialize(case, tmp_path / case, values)
    _special_setup(case, folder)
    if expected.ingested:
        incoming, _ = ingest([folder], tmp_path / "staging")
        assert len(incoming) == 1, incoming
        folder = incoming[0].folder
    ctx: dict[str, Any] = {"spec": spec, "server": server, "other": Path(values["OTHER"]),
                           "other_hash": _tree_hash(Path(values["OTHER"])),
                           "generation_before": session.sandbox.generation}
    out_before = _tree_hash(Path(values["OUT"]))
    host_before = _host_state()
    started = time.monotonic()
    result = session.grade(folder)
    elapsed = time.monotonic() - started
    ctx["generation_after"] = session.sandbox.generation

    summary = (f"{case}: {result.score}/{result.max_score} flags={[(f.kind, f.test, f.detail) for f in result.flags]} "
               f"tests={[(t.nodeid, t.outcome.value, t.message[:80]) for t in result.tests]} "
               f"problems={[(p.file, p.message) for p in result.problems]}")
    assert elapsed < expected.max_seconds, summary
    assert result.score == expected.score, summary
    kinds = {f.kind for f in result.flags}
    assert expected.flags <= kinds, summary
    if expected.plain_bug:
        assert "refused" not in kinds, summary
    assert "internal" not in kinds, summary
    assert not any("LEAK" in t.stdout for t in result.tests), summary
    if expected.check:
        expected.check(result, ctx)
    save(result, tmp_path / "saved")  # the result is valid, encodable data whatever the submission printed

    # nothing survives, nothing outside the private folders changed
    assert session.sandbox.leftover_processes() == [], "processes left in the sandbox's cgroup"
    assert _wait_gone(values["TAG"]) == [], "a process the submission started is still running"
    assert not Path(values["MARKER"]).exists(), Path(values["MARKER"]).read_text()
    assert _host_state() == host_before
    assert _tree_hash(Path(values["OUT"])) == out_before
    assert ctx["other_hash"] == _tree_hash(ctx["other"])

    # the same session still grades the reference at 100%
    reference = session.grade(REFERENCE)
    assert reference.score == reference.max_score == 10, reference.flags
    assert not reference.flags and not reference.problems


def test_cross_student(session: GradingSession, server: Server, tmp_path: Path) -> None:
    """A student who plants files, processes and environment changes cannot touch the next one's grade."""
    values = _values(tmp_path, server)
    plant = materialize("plant", tmp_path / "plant", values)
    spy = materialize("spy", tmp_path / "spy", values)
    planted = session.grade(plant)
    assert planted.score == 10, planted
    after_plant = session.grade(spy)
    assert session.sandbox.leftover_processes() == []
    assert _wait_gone(values["TAG"]) == []
    with GradingSession(session.spec) as fresh:
        alone = fresh.grade(spy)
    assert after_plant.score == alone.score == 8
    assert [(t.nodeid, t.outcome, t.score) for t in after_plant.tests] == [(t.nodeid, t.outcome, t.score) for t in alone.tests]
    seen = [t.stdout for t in after_plant.tests if "SEEN:" in t.stdout]
    # What a fresh session shows: nothing, or (for a checkout under /tmp) only the folders that hold the
    # Python environment bound read-only into the private /tmp.
    assert seen and seen == [t.stdout for t in alone.tests if "SEEN:" in t.stdout], seen
    prefix = Path(sys.prefix)
    view_folders = {f"/tmp/{prefix.relative_to('/tmp').parts[0]}"} if prefix.is_relative_to("/tmp") else set()
    assert all(set(ast.literal_eval(s.split("SEEN:", 1)[1].strip())) <= view_folders for s in seen), seen


def test_not_a_folder_and_empty(session: GradingSession, tmp_path: Path) -> None:
    a_file = tmp_path / "alice.py"
    a_file.write_text("x = 1\n")
    result = session.grade(a_file)
    assert result.score == 0 and result.max_score == 10
    assert _problem(result, "alice.py is not a folder; nothing could be graded")
    empty = tmp_path / "bob"
    empty.mkdir()
    result = session.grade(empty)
    assert result.score == 0
    assert _problem(result, "the submission folder is empty")
    assert _problem(result, "blocks.py is missing", "blocks.py")
    assert not result.flags


def test_zip_that_escapes_its_folder(session: GradingSession, tmp_path: Path) -> None:
    """A student's zip with '..', absolute and link entries unpacks inside its folder only (grader.intake.ingest)."""
    import stat as stat_module
    import zipfile

    from grader.intake.ingest import unpack_zip

    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(REFERENCE / "blocks.py", "day09/blocks.py")
        zf.write(REFERENCE / "extra.py", "day09/extra.py")
        zf.writestr("day09/../../outside/escaped.py", "pwned = True\n")
        zf.writestr("../outside/escaped2.py", "pwned = True\n")
        zf.writestr(str(outside / "absolute.py"), "pwned = True\n")
        link = zipfile.ZipInfo("day09/passwd")
        link.create_system = 3
        link.external_attr = (stat_module.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    dest = tmp_path / "unpacked" / "alice"
    problems = unpack_zip(archive, dest)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "unpacked" / "outside").exists()
    detail = "\n".join(p.message + "\n" + p.detail for p in problems)
    assert "leaves the folder" in detail and "absolute path" in detail and "symbolic link" in detail, detail
    assert sorted(p.name for p in dest.rglob("*")) == ["blocks.py", "extra.py"]
    result = session.grade(dest)
    assert result.score == 10, result


def _scores(r: SubmissionResult) -> list[tuple[str, Outcome, float]]:
    return [(t.nodeid, t.outcome, t.score) for t in r.tests]


def test_freeloader_after_a_donor_scores_what_it_scores_alone(session: GradingSession, server: Server,
                                                              tmp_path: Path) -> None:
    """Graded right after a donor in the same worker pool, a freeloader finds nothing the donor left.

    The donor leaves its sources in every writable folder, in the descriptors
    of every process it can see (bubblewrap's init once held its stderr on a
    host file), in POSIX and SysV message queues, SysV shared memory, an
    abstract Unix socket served by a daemon, the environment and its own heap.
    The freeloader looks in all of them (and scans its own memory) and would
    run what it finds: it must score exactly what it scores alone, which is
    what the unfinished skeleton scores.
    """
    values = _values(tmp_path, server)
    donor = materialize("donor", tmp_path / "donor", values)
    freeloader = materialize("freeloader", tmp_path / "freeloader", values)
    given = session.grade(donor)
    assert given.score == 10, given
    after = session.grade(freeloader)
    assert session.sandbox.leftover_processes() == []
    assert _wait_gone(values["TAG"]) == []
    with GradingSession(session.spec) as fresh:
        alone = fresh.grade(freeloader)
    assert _scores(after) == _scores(alone), (after.tests, alone.tests)
    assert after.score == alone.score == 2  # double() only: SkipBlock is the unfinished stub
    seen = [t.stdout for t in after.tests if "SEEN:" in t.stdout]
    assert seen and all("SEEN: []" in line for s in seen for line in s.splitlines() if "SEEN:" in line), seen
