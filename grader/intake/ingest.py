"""Turning what an instructor downloaded into one folder per student.

``grader run`` accepts, for each argument:

- a **submission folder** (it holds the student's files; its name gives the id);
- a **student's .zip** (extracted safely; the zip's name gives the id);
- a **class**: a folder or a .zip that holds only zips and/or folders, one per
  student (an LMS bulk download: Canvas's flat zip of zips, Moodle's folder per
  student). Each entry's name gives that student's id.

How a folder (or the inside of a zip) is read, junk such as ``__MACOSX`` and
``.DS_Store`` aside:

1. it holds any file that is not a .zip, or nothing at all: one submission;
2. it holds exactly one folder and nothing else: that folder is looked into
   instead (``alice/day09/*.py`` is alice's submission; so is a zip whose files
   all sit in one top folder);
3. it holds exactly one .zip and nothing else: that zip is the submission (the
   Moodle layout ``Alice Smith_12345_assignsubmission_file_/day09.zip``);
4. anything else (two or more zips and/or folders): a class, each entry one
   student. A class inside a class is not looked for;
5. before rule 1: files (and zips) that all carry an LMS's bulk-download names
   (``alice_111_901_vgg.py``, ``Dave Smith_67890_assignsubmission_file_vgg.py``:
   Canvas always downloads flat, Moodle when not "in folders") are a class too,
   one submission per student, each file under its own name (``vgg.py``).

Student ids come from names. The default rule recognises LMS bulk names and
keeps the part before the LMS's numbers: Moodle's
``Alice Smith_12345_assignsubmission_file_day09.zip`` gives ``Alice-Smith`` and
Canvas's ``alice_12345_67890_day09.zip`` (or ``alice_LATE_12345_67890_...``)
gives ``alice``; any other name gives its stem (``alice.zip`` -> ``alice``).
``--id-pattern REGEX`` replaces the rule: it is searched in each name (file
name with its extension, or folder name) and its group ``id`` (or its first
group, or the whole match) is the id; a name it does not match is an error.
Ids are then made safe: accents dropped, runs of other characters than letters,
digits and ``. _ @ + -`` become ``-``.

The LMS's own identifiers are kept beside the id, whatever rule gave the id
(``lms_identity``): Moodle's participant number (``67890`` above; its grading
worksheet names a student "Participant 67890"), Canvas's user id and attachment
id (``12345`` and ``67890``) and its ``LATE`` marker. They travel with the
submission into its results (``SubmissionResult.lms``) and the exports.

Zip safety: entries with absolute paths, ``..``, drive letters, symbolic links
(``external_attr`` type ``S_IFLNK``), other special files or encryption are
left out and named in a Problem; so are files over the intake's per-file size
limit and files past its total budget. A zip with more than ``max_entries``
entries or whose declared sizes add up past ``max_declared_bytes`` is not
extracted at all (a zip bomb), nor is one whose entries inflate to more bytes
than they declare (counted while streaming), or that is corrupt. Such a
student's result carries a Problem saying so and the run goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.intake import submission as intake
from grader.results import LmsIdentity, Problem

JUNK_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini", ".git", "__pycache__", ".ipynb_checkpoints"}
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
# Moodle: "<full name>_<participant id>_assignsubmission_<plugin>_<file>";
# Canvas: "<login>[_LATE]_<user id>_<submission id>_<file>".
DEFAULT_ID_PATTERN = re.compile(r"^(?P<id>.+?)_(?:LATE_)?\d+_(?:assignsubmission_|\d+_)")
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<participant>\d+)_assignsubmission_")
CANVAS_NAME = re.compile(r"^(?P<name>.+?)(?P<late>_LATE)?_(?P<user_id>\d+)_(?P<attachment_id>\d+)_")
MOODLE_FILE = re.compile(r"^.+?_\d+_assignsubmission_[a-z]+_(?P<file>.*)$")
CANVAS_FILE = re.compile(r"^.+?(?:_LATE)?_\d+_\d+_(?P<file>.*)$")
# Canvas renames a file uploaded again under a name the student used before: vgg.py, then vgg-1.py, vgg-2.py.
CANVAS_AGAIN = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<ext>\.[A-Za-z0-9]+)$")
CHUNK = 1 << 16


class IngestError(Exception):
    """Input that cannot be turned into submissions at all (bad usage): one line for the user."""


class ZipRejected(Exception):
    """A zip that is not extracted: the message says why, for the student's report."""


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_declared_bytes: int   # declared uncompressed total above which a zip is not touched
    max_file_bytes: int       # larger entries are left out
    max_total_bytes: int      # entries past this budget are left out


STUDENT_ZIP = ZipLimits(max_entries=5_000, max_declared_bytes=1 << 30,
                        max_file_bytes=intake.MAX_FILE_BYTES, max_total_bytes=intake.MAX_TOTAL_BYTES)
CLASS_ZIP = ZipLimits(max_entries=100_000, max_declared_bytes=16 << 30,
                      max_file_bytes=256 << 20, max_total_bytes=8 << 30)


@dataclass
class Incoming:
    """One student's submission, ready to grade: ``folder`` holds its files."""

    student: str
    folder: Path
    origin: str   # where it came from, for messages: "class.zip/alice_1_2_x.zip"
    problems: list[Problem] = field(default_factory=list)
    lms: LmsIdentity | None = None   # read from the LMS's bulk-download name


# --- names -------------------------------------------------------------------

def _is_junk(name: str) -> bool:
    return name in JUNK_NAMES or name.startswith("._")


def _safe_id(raw: str) -> str:
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._@+-]+", "-", text.strip())
    return text.lstrip("._-+@").rstrip("-")


class IdRule:
    """Student ids from file and folder names (see the module's docstring)."""

    def __init__(self, pattern: str | None = None) -> None:
        self.explicit = pattern is not None
        if pattern is None:
            self.regex = DEFAULT_ID_PATTERN
        else:
            try:
                self.regex = re.compile(pattern)
            except re.error as e:
                raise IngestError(f"--id-pattern {pattern!r} is not a valid regular expression: {e}") from None

    def __call__(self, name: str) -> str:
        stem = name[:-4] if name.lower().endswith(".zip") else name
        m = self.regex.search(name)
        if m is None:
            if self.explicit:
                raise IngestError(f"--id-pattern {self.regex.pattern!r} does not match {name!r}")
            raw = stem
        elif "id" in self.regex.groupindex:
            raw = m.group("id")
        else:
            raw = m.group(1) if self.regex.groups else m.group(0)
        sid = _safe_id(raw or "")
        if not STUDENT_ID.match(sid):
            raise IngestError(f"{name!r} gives no usable student id (got {raw!r}); rename it or use --id-pattern")
        return sid


def lms_identity(name: str) -> LmsIdentity | None:
    """The LMS identifiers in a bulk-download name (a file or folder name), or None for any other name."""
    m = MOODLE_NAME.match(name)
    if m:
        return LmsIdentity(system="moodle", ids={"participant": m["participant"]}, name=m["name"])
    m = CANVAS_NAME.match(name)
    if m:
        return LmsIdentity(system="canvas", ids={"user_id": m["user_id"], "attachment_id": m["attachment_id"]},
                           name=m["name"], late=bool(m["late"]))
    return None


# --- zips ----------------------------------------------------------------------

def _member_path(info: zipfile.ZipInfo) -> tuple[PurePosixPath | None, str]:
    """The entry's safe relative path, or None and why it is refused."""
    name = info.filename
    if "\0" in name:
        return None, "a NUL character in its name"
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None, "an absolute path"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None, "a path that leaves the folder ('..')"
    if not parts:
        return None, "an empty name"
    return PurePosixPath(*parts), ""


def _member_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):   # a Unix file type is recorded
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        if not stat.S_ISREG(mode):
            return "special"
    return "dir" if info.is_dir() else "file"


@dataclass
class _Entry:
    info: zipfile.ZipInfo
    path: PurePosixPath


def _scan_zip(zf: zipfile.ZipFile, limits: ZipLimits, skipped: list[str]) -> list[_Entry]:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ZipRejected(f"it has {len(infos):,} entries (the limit is {limits.max_entries:,})")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_declared_bytes:
        raise ZipRejected(f"it declares {declared:,} bytes once unpacked (the limit is "
                          f"{limits.max_declared_bytes:,}); it looks like a zip bomb")
    entries, seen = [], set()
    for info in infos:
        path, why = _member_path(info)
        if path is None:
            skipped.append(f"{info.filename!r} ({why})")
            continue
        if any(_is_junk(p) for p in path.parts):
            continue
        kind = _member_kind(info)
        if kind == "dir":
            continue
        if kind == "link":
            skipped.append(f"{path} (a symbolic link; links are never followed)")
            continue
        if kind == "special":
            skipped.append(f"{path} (not a regular file)")
            continue
        if info.flag_bits & 0x1:
            skipped.append(f"{path} (password-protected)")
            continue
        if path in seen:
            skipped.append(f"{path} (listed twice in the zip; the first copy was used)")
            continue
        seen.add(path)
        entries.append(_Entry(info, path))
    return entries


def _common_top(paths: list[PurePosixPath]) -> int:
    """How many leading folders every path shares (rule 2, applied inside a zip)."""
    depth = 0
    while paths and all(len(p.parts) > depth + 1 for p in paths) and len({p.parts[depth] for p in paths}) == 1:
        depth += 1
    return depth


def _extract(zf: zipfile.ZipFile, entries: list[_Entry], dest: Path, limits: ZipLimits, strip: int,
             skipped: list[str]) -> None:
    total = 0
    dest.mkdir(parents=True, exist_ok=True)
    for e in entries:
        rel = PurePosixPath(*e.path.parts[strip:])
        if e.info.file_size > limits.max_file_bytes:
            skipped.append(f"{rel} (over the size limit of {limits.max_file_bytes:,} bytes)")
            continue
        if total + e.info.file_size > limits.max_total_bytes:
            skipped.append(f"{rel} (past the total size limit of {limits.max_total_bytes:,} bytes)")
            continue
        target = dest.joinpath(*rel.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            skipped.append(f"{rel} (cannot be written here: {err.strerror})")
            continue
        written = 0
        with os.fdopen(fd, "wb") as out, zf.open(e.info) as src:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > e.info.file_size or written > limits.max_file_bytes:
                    raise ZipRejected(f"{rel} unpacks to more bytes than its header declares; "
                                      "it looks like a zip bomb")
                out.write(chunk)
        total += written


def _unpack(zip_path: Path, dest: Path, limits: ZipLimits, flatten: bool) -> tuple[str | None, list[str]]:
    """Extract safely; returns (why the whole zip was refused or None, entries left out)."""
    skipped: list[str] = []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            entries = _scan_zip(zf, limits, skipped)
            strip = _common_top([e.path for e in entries]) if flatten else 0
            _extract(zf, entries, dest, limits, strip, skipped)
    except ZipRejected as e:
        fatal = f"{zip_path.name} was not unpacked: {e}"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError,
            RuntimeError) as e:
        fatal = f"{zip_path.name} is not a zip file that can be read ({str(e) or type(e).__name__})"
    else:
        return None, skipped
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    return fatal, skipped


def unpack_zip(zip_path: Path, dest: Path, limits: ZipLimits = STUDENT_ZIP, flatten: bool = True) -> list[Problem]:
    """Extract ``zip_path`` into ``dest`` safely; problems for the student's report, never an exception.

    With ``flatten``, folders that hold every file (``day09/...``) are dropped.
    A refused zip leaves ``dest`` empty.
    """
    fatal, skipped = _unpack(Path(zip_path), Path(dest), limits, flatten)
    if fatal:
        return [Problem(kind="bad_input", message=f"{fatal}; nothing in it was graded")]
    if skipped:
        return [Problem(kind="bad_input", message=f"{len(skipped)} item(s) in {Path(zip_path).name} were left out",
                        detail="\n".join(skipped[:50]))]
    return []


# --- classification --------------------------------------------------------

def _listing(names: list[tuple[str, bool]]) -> tuple[list[str], list[str], list[str]]:
    """(other files, zips, folders) among (name, is_folder) pairs, junk left out."""
    files, zips, dirs = [], [], []
    for name, is_dir in names:
        if _is_junk(name):
            continue
        if is_dir:
            dirs.append(name)
        elif name.lower().endswith(".zip"):
            zips.append(name)
        else:
            files.append(name)
    return files, zips, dirs


def _folder_listing(folder: Path) -> tuple[list[str], list[str], list[str]]:
    """(other files, zips, folders) in ``folder``; a link or special file is an "other file", whatever its name.

    So a ``day09.zip`` that is a symbolic link is never opened: the folder is
    read as one submission, and intake leaves the link out and names it.
    """
    names, others = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        is_dir = entry.is_dir(follow_symlinks=False)
        if not is_dir and not entry.is_file(follow_symlinks=False):
            if not _is_junk(entry.name):
                others.append(entry.name)   # links and the like: intake reports them
        else:
            names.append((entry.name, is_dir))
    files, zips, dirs = _listing(names)
    return sorted(files + others), zips, dirs


def _is_class(files: list[str], zips: list[str], dirs: list[str]) -> bool:
    return (not files and len(zips) + len(dirs) >= 2) or _is_flat_lms_download(files, zips, dirs)


def _is_flat_lms_download(files: list[str], zips: list[str], dirs: list[str]) -> bool:
    """Files each named by the LMS for its student (Canvas always, Moodle without "download as folders"):
    ``alice_111_901_vgg.py``, ``Dave Smith_67890_assignsubmission_file_vgg.py``."""
    return bool(files) and not dirs and all(lms_identity(name) is not None for name in files + zips)


def lms_file_name(name: str) -> str:
    """The student's own file name inside an LMS bulk-download name (``vgg.py`` of ``alice_111_901_vgg.py``)."""
    m = MOODLE_FILE.match(name) or CANVAS_FILE.match(name)
    return m["file"] if m and m["file"] else name


def _own_file_names(names: list[str]) -> tuple[dict[str, str], list[str]]:
    """One student's LMS file names -> the names the student gave them, and what is left out.

    A file Canvas renamed because it was uploaded again (``vgg-1.py``) gets its
    name back (``vgg.py``); of several uploads of one name the latest (highest
    number) is kept and the others are left out, each said why.
    """
    base_of: dict[str, tuple[str, int]] = {}
    for name in names:
        own = lms_file_name(name)
        again = CANVAS_AGAIN.match(own) if CANVAS_NAME.match(name) and not MOODLE_NAME.match(name) else None
        base_of[name] = (again["stem"] + again["ext"], int(again["n"])) if again else (own, 0)
    latest: dict[str, str] = {}
    for name in names:
        base, n = base_of[name]
        if base not in latest or n > base_of[latest[base]][1]:
            latest[base] = name
    own_names = {name: base for base, name in latest.items()}
    left_out = [f"{name} (an earlier upload of {base_of[name][0]}; the latest, {latest[base_of[name][0]]}, is graded)"
                for name in names if name not in own_names]
    return own_names, left_out


def _zip_is_class(zip_path: Path) -> bool:
    """Whether a zip holds a class (rule 4 applied to its top level, after the shared top folders)."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = [(path, _member_kind(info) == "dir") for info in zf.infolist()
                       for path in [_member_path(info)[0]] if path is not None]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return False
    members = [(p, is_dir) for p, is_dir in members if not any(_is_junk(x) for x in p.parts)]
    strip = _common_top([p for p, is_dir in members if not is_dir])
    top: dict[str, bool] = {}
    for p, is_dir in members:
        if len(p.parts) > strip:
            name = p.parts[strip]
            top[name] = top.get(name, False) or is_dir or len(p.parts) > strip + 1
    return _is_class(*_listing(list(top.items())))


class Ingest:
    """Reads the run's arguments into ``Incoming`` submissions, unpacking zips under ``staging``."""

    def __init__(self, staging: Path, id_pattern: str | None = None) -> None:
        self.staging = staging
        self.ids = IdRule(id_pattern)
        self.warnings: list[str] = []
        self._n = 0

    def _scratch(self, hint: str) -> Path:
        self._n += 1
        path = self.staging / f"{self._n:05d}-{hint}"
        path.mkdir(parents=True)
        return path

    def student_zip(self, zip_path: Path, sid: str, origin: str) -> Incoming:
        dest = self._scratch(sid)
        return Incoming(sid, dest, origin, unpack_zip(zip_path, dest, STUDENT_ZIP))

    def student_folder(self, folder: Path, sid: str, origin: str) -> Incoming:
        for _ in range(intake.MAX_DEPTH):
            files, zips, dirs = _folder_listing(folder)
            if not files and not zips and len(dirs) == 1:
                folder = folder / dirs[0]                                  # rule 2
            elif not files and not dirs and len(zips) == 1:
                return self.student_zip(folder / zips[0], sid, origin)    # rule 3
            else:
                break
        return Incoming(sid, folder, origin)

    def flat_lms_download(self, folder: Path, files: list[str], origin: str) -> list[Incoming]:
        """One submission per student of a flat LMS download: each student's files, under their own names."""
        students: dict[tuple[str, str], list[str]] = {}
        for name in sorted(files):
            identity = lms_identity(name)
            user = identity.ids.get("participant") or identity.ids.get("user_id", "")
            students.setdefault((identity.system, user), []).append(name)
        out = []
        for names in students.values():
            first = names[0]
            sid, where = self.ids(first), f"{origin}/{first}"
            if len(names) == 1 and first.lower().endswith(".zip"):
                item = self.student_zip(folder / first, sid, where)
            else:
                dest = self._scratch(sid)
                own_names, left_out = _own_file_names(names)
                for name in names:
                    if name not in own_names:
                        continue
                    mode = os.lstat(folder / name)
                    if not stat.S_ISREG(mode.st_mode):
                        left_out.append(f"{name} (not a regular file; links are never followed)")
                    elif mode.st_size > intake.MAX_FILE_BYTES:
                        left_out.append(f"{name} (over the size limit of {intake.MAX_FILE_BYTES:,} bytes)")
                    else:
                        shutil.copyfile(folder / name, dest / own_names[name])
                item = Incoming(sid, dest, where)
                if left_out:
                    item.problems.append(Problem(kind="bad_input", message=f"{len(left_out)} item(s) were left out",
                                                 detail="\n".join(left_out)))
            item.lms = lms_identity(first)
            out.append(item)
        return out

    def class_folder(self, folder: Path, origin: str) -> list[Incoming]:
        files, zips, dirs = _folder_listing(folder)
        if files:
            return self.flat_lms_download(folder, files + zips, origin)
        out = []
        for name in sorted(zips + dirs):
            path, where = folder / name, f"{origin}/{name}"
            sid = self.ids(name)
            item = self.student_folder(path, sid, where) if path.is_dir() else self.student_zip(path, sid, where)
            item.lms = lms_identity(name)
            out.append(item)
        return out

    def read(self, path: Path) -> list[Incoming]:
        """The submissions one command-line argument holds."""
        if path.is_dir():
            if _is_class(*_folder_listing(path)):
                return self.class_folder(path, str(path))
            item = self.student_folder(path, self.ids(path.resolve().name), str(path))
            item.lms = lms_identity(path.resolve().name)
            return [item]
        if path.is_file() and path.name.lower().endswith(".zip"):
            if not _zip_is_class(path):
                item = self.student_zip(path, self.ids(path.name), str(path))
                item.lms = lms_identity(path.name)
                return [item]
            dest = self._scratch("class")
            fatal, skipped = _unpack(path, dest, CLASS_ZIP, flatten=True)
            if fatal:
                raise IngestError(f"{path}: {fatal}")
            self.warnings += [f"{path}: left out {item}" for item in skipped]
            return self.class_folder(dest, str(path))
        if path.exists():
            raise IngestError(f"{path}: not a folder or a .zip file")
        raise IngestError(f"no such submission: {path}")


def ingest(paths: list[Path], staging: Path, id_pattern: str | None = None) -> tuple[list[Incoming], list[str]]:
    """Every submission the arguments hold, and warnings about the class downloads themselves.

    Two submissions with the same student id are an error.
    """
    reader = Ingest(staging, id_pattern)
    found: list[Incoming] = []
    for p in paths:
        found += reader.read(Path(p))
    seen: dict[str, Incoming] = {}
    for item in found:
        if item.student in seen:
            raise IngestError(f"two submissions share the student id {item.student!r} ({seen[item.student].origin} and "
                              f"{item.origin}); rename one or use --id-pattern")
        seen[item.student] = item
    return found, reader.warnings
