"""Reading what instructors download: folders, zips (safely) and LMS bulk downloads."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from grader.intake.ingest import CLASS_ZIP, STUDENT_ZIP, IdRule, IngestError, ZipLimits, ingest, lms_identity, unpack_zip
from grader.results import LmsIdentity

CODE = "def double(x):\n    return 2 * x\n"


def make_zip(path: Path, members: dict[str, bytes | str], *, links: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def files_under(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- ids -------------------------------------------------------------------------

@pytest.mark.parametrize("name, sid", [
    ("alice_12345_assignsubmission_file_day09.zip", "alice"),
    ("Alice Smith_12345_assignsubmission_file_day09.zip", "Alice-Smith"),
    ("Alice Smith_12345_assignsubmission_file_", "Alice-Smith"),
    ("José Núñez_777_assignsubmission_onlinetext_x.zip", "Jose-Nunez"),
    ("smithjohn_12345_67890_day09.zip", "smithjohn"),
    ("smithjohn_LATE_12345_67890_day09.zip", "smithjohn"),
    ("bob2_1_2_day09_final.zip", "bob2"),
    ("alice.zip", "alice"),
    ("ref-01", "ref-01"),
    ("carol_day09.zip", "carol_day09"),
])
def test_default_id_rule(name, sid):
    assert IdRule()(name) == sid


def test_explicit_id_pattern():
    rule = IdRule(r"_(?P<id>\d+)_assignsubmission")
    assert rule("Alice Smith_12345_assignsubmission_file_day09.zip") == "12345"
    with pytest.raises(IngestError, match="does not match 'alice.zip'"):
        rule("alice.zip")
    assert IdRule(r"^(\w+?)-")("bob-final.zip") == "bob"
    with pytest.raises(IngestError, match="not a valid regular expression"):
        IdRule("(")


def test_unusable_id_is_an_error():
    with pytest.raises(IngestError, match="no usable student id"):
        IdRule()("___.zip")


# --- safe extraction ---------------------------------------------------------------

def test_zip_with_one_top_folder_is_flattened(tmp_path):
    z = make_zip(tmp_path / "alice.zip", {"day09/blocks.py": CODE, "day09/notes/readme.txt": "hi",
                                         "__MACOSX/day09/._blocks.py": "junk", "day09/.DS_Store": "junk"})
    assert unpack_zip(z, tmp_path / "x") == []
    assert files_under(tmp_path / "x") == {"blocks.py": CODE, "notes/readme.txt": "hi"}


def test_traversal_absolute_and_symlinks_are_left_out(tmp_path):
    z = make_zip(tmp_path / "mallory.zip",
                 {"blocks.py": CODE, "../evil.py": "x", "/etc/evil.py": "x", "a/../../evil2.py": "x",
                  "C:/evil3.py": "x", "..\\evil4.py": "x"},
                 links={"link.py": "/etc/passwd"})
    dest = tmp_path / "stage" / "mallory"
    problems = unpack_zip(z, dest)
    assert files_under(dest) == {"blocks.py": CODE}
    assert not list(tmp_path.rglob("evil*")) and not (tmp_path / "stage" / "evil.py").exists()
    assert len(problems) == 1 and problems[0].kind == "bad_input"
    detail = problems[0].detail
    assert "symbolic link" in detail and "absolute path" in detail and "'..'" in detail
    assert "6 item(s) in mallory.zip were left out" in problems[0].message


def test_declared_size_bomb_is_refused(tmp_path):
    z = make_zip(tmp_path / "bomb.zip", {"blocks.py": CODE, "zeros.bin": b"\0" * (3 << 20)})
    small = ZipLimits(max_entries=100, max_declared_bytes=1 << 20, max_file_bytes=1 << 20, max_total_bytes=1 << 20)
    problems = unpack_zip(z, tmp_path / "x", small)
    assert len(problems) == 1 and "zip bomb" in problems[0].message and "nothing in it was graded" in problems[0].message
    assert files_under(tmp_path / "x") == {}


def test_too_many_entries_is_refused(tmp_path):
    z = make_zip(tmp_path / "many.zip", {f"f{i}.txt": "x" for i in range(60)})
    problems = unpack_zip(z, tmp_path / "x", ZipLimits(50, 1 << 30, 1 << 20, 1 << 20))
    assert "60 entries" in problems[0].message and files_under(tmp_path / "x") == {}


def test_lying_header_is_caught_while_streaming(tmp_path):
    """A member that declares 10 bytes but inflates to 2 MB never writes more than it declared."""
    data = zip_bytes({"blocks.py": CODE, "big.bin": b"A" * (2 << 20)})
    # patch big.bin's declared uncompressed size (local header and central directory) to 10
    def offsets(signature: bytes) -> list[int]:
        return [i for i in range(len(data) - 3) if data[i:i + 4] == signature]

    i_local, i_central = offsets(b"PK\x03\x04")[1], offsets(b"PK\x01\x02")[1]
    data = bytearray(data)
    struct.pack_into("<I", data, i_local + 22, 10)
    struct.pack_into("<I", data, i_central + 24, 10)
    z = tmp_path / "liar.zip"
    z.write_bytes(bytes(data))
    problems = unpack_zip(z, tmp_path / "x")
    assert len(problems) == 1 and "nothing in it was graded" in problems[0].message
    assert files_under(tmp_path / "x") == {}


def test_large_members_are_left_out_not_the_zip(tmp_path):
    z = make_zip(tmp_path / "alice.zip", {"blocks.py": CODE, "weights.pth": b"\1" * 3000})
    problems = unpack_zip(z, tmp_path / "x", ZipLimits(100, 1 << 30, 2000, 1 << 20))
    assert files_under(tmp_path / "x") == {"blocks.py": CODE}
    assert "weights.pth (over the size limit" in problems[0].detail


def test_corrupt_zip_is_a_problem(tmp_path):
    z = tmp_path / "broken.zip"
    z.write_bytes(b"PK\x03\x04 this is not really a zip")
    problems = unpack_zip(z, tmp_path / "x")
    assert "not a zip file that can be read" in problems[0].message


def test_limits_sit_above_the_intake():
    from grader.intake import submission as intake

    assert STUDENT_ZIP.max_file_bytes == intake.MAX_FILE_BYTES and STUDENT_ZIP.max_total_bytes == intake.MAX_TOTAL_BYTES
    assert CLASS_ZIP.max_file_bytes > STUDENT_ZIP.max_declared_bytes / 8


# --- what one argument holds ---------------------------------------------------------

def test_plain_folder_and_nested_folder(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "blocks.py").write_text(CODE)
    (tmp_path / "bob" / "day09").mkdir(parents=True)
    (tmp_path / "bob" / "day09" / "blocks.py").write_text(CODE)
    found, warnings = ingest([tmp_path / "alice", tmp_path / "bob"], tmp_path / "stage")
    assert [(i.student, i.folder) for i in found] == [("alice", tmp_path / "alice"), ("bob", tmp_path / "bob" / "day09")]
    assert warnings == [] and all(i.problems == [] for i in found)


def test_student_zip(tmp_path):
    z = make_zip(tmp_path / "dl" / "carol.zip", {"day09/blocks.py": CODE})
    [item] = ingest([z], tmp_path / "stage")[0]
    assert item.student == "carol" and files_under(item.folder) == {"blocks.py": CODE}
    assert item.folder.is_relative_to(tmp_path / "stage")


def test_canvas_bulk_zip_of_zips(tmp_path):
    bulk = make_zip(tmp_path / "submissions.zip", {
        "alice_111_901_day09.zip": zip_bytes({"blocks.py": CODE}),
        "bob_LATE_222_902_day09.zip": zip_bytes({"day09/blocks.py": CODE}),
        "mallory_333_903_day09.zip": zip_bytes({"blocks.py": CODE, "../../escape.py": "x"}),
        "eve_444_904_day09.zip": b"not a zip at all",
    })
    found, _ = ingest([bulk], tmp_path / "stage")
    by_id = {i.student: i for i in found}
    assert sorted(by_id) == ["alice", "bob", "eve", "mallory"]
    assert files_under(by_id["bob"].folder) == {"blocks.py": CODE}
    assert "left out" in by_id["mallory"].problems[0].message
    assert "not a zip file that can be read" in by_id["eve"].problems[0].message
    assert not list(tmp_path.rglob("escape.py"))
    assert by_id["alice"].origin == f"{bulk}/alice_111_901_day09.zip"
    # Canvas's ids and LATE marker stay with the submission
    assert by_id["alice"].lms == LmsIdentity(system="canvas", ids={"user_id": "111", "attachment_id": "901"},
                                             name="alice", late=False)
    assert by_id["bob"].lms.late and by_id["bob"].lms.ids["user_id"] == "222"


def test_moodle_folder_per_student(tmp_path):
    dl = tmp_path / "moodle"
    make_zip(dl / "Alice Smith_12345_assignsubmission_file_" / "day09.zip", {"blocks.py": CODE})
    (dl / "Bob Jones_12346_assignsubmission_file_").mkdir(parents=True)
    (dl / "Bob Jones_12346_assignsubmission_file_" / "blocks.py").write_text(CODE)
    found, _ = ingest([dl], tmp_path / "stage")
    assert {i.student: files_under(i.folder) for i in found} == {"Alice-Smith": {"blocks.py": CODE},
                                                               "Bob-Jones": {"blocks.py": CODE}}
    # the participant number, which Moodle's grading worksheet matches on, is kept beside the id
    assert {i.student: i.lms for i in found} == {
        "Alice-Smith": LmsIdentity(system="moodle", ids={"participant": "12345"}, name="Alice Smith"),
        "Bob-Jones": LmsIdentity(system="moodle", ids={"participant": "12346"}, name="Bob Jones")}


def test_moodle_bulk_zip_of_zips_keeps_participant_numbers(tmp_path):
    bulk = make_zip(tmp_path / "day09-bulk.zip", {
        "Dave Smith_67890_assignsubmission_file_day09.zip": zip_bytes({"blocks.py": CODE}),
        "Eve Adams_67891_assignsubmission_file_day09.zip": zip_bytes({"blocks.py": CODE}),
    })
    found, _ = ingest([bulk], tmp_path / "stage")
    assert [(i.student, i.lms.system, i.lms.ids, i.lms.name) for i in found] == [
        ("Dave-Smith", "moodle", {"participant": "67890"}, "Dave Smith"),
        ("Eve-Adams", "moodle", {"participant": "67891"}, "Eve Adams")]


@pytest.mark.parametrize("name, system, ids, late", [
    ("Dave Smith_67890_assignsubmission_file_day09.zip", "moodle", {"participant": "67890"}, False),
    ("Dave Smith_67890_assignsubmission_file_", "moodle", {"participant": "67890"}, False),
    ("smithdave_12345_67890_name.zip", "canvas", {"user_id": "12345", "attachment_id": "67890"}, False),
    ("smithdave_LATE_12345_67890_name.zip", "canvas", {"user_id": "12345", "attachment_id": "67890"}, True),
])
def test_lms_identity_from_bulk_names(name, system, ids, late):
    found = lms_identity(name)
    assert (found.system, found.ids, found.late) == (system, ids, late)


@pytest.mark.parametrize("name", ["alice.zip", "alice", "carol_day09.zip", "bob_2024_notes.zip"])
def test_other_names_carry_no_lms_identity(name):
    assert lms_identity(name) is None


def test_a_single_bulk_named_zip_keeps_its_identity(tmp_path):
    z = make_zip(tmp_path / "smithdave_LATE_12345_67890_day09.zip", {"blocks.py": CODE})
    [item] = ingest([z], tmp_path / "stage")[0]
    assert item.student == "smithdave" and item.lms.late and item.lms.ids["user_id"] == "12345"


def test_folder_of_zips_and_explicit_pattern(tmp_path):
    make_zip(tmp_path / "dl" / "s1_alice.zip", {"blocks.py": CODE})
    make_zip(tmp_path / "dl" / "s2_bob.zip", {"blocks.py": CODE})
    found, _ = ingest([tmp_path / "dl"], tmp_path / "stage", id_pattern=r"^s\d+_(?P<id>\w+)\.zip$")
    assert [i.student for i in found] == ["alice", "bob"]


def test_duplicate_ids_are_a_usage_error(tmp_path):
    make_zip(tmp_path / "a" / "alice.zip", {"blocks.py": CODE})
    (tmp_path / "b" / "alice").mkdir(parents=True)
    (tmp_path / "b" / "alice" / "blocks.py").write_text(CODE)
    with pytest.raises(IngestError, match="two submissions share the student id 'alice'"):
        ingest([tmp_path / "a" / "alice.zip", tmp_path / "b" / "alice"], tmp_path / "stage")


def test_not_a_folder_or_zip(tmp_path):
    (tmp_path / "alice.py").write_text(CODE)
    with pytest.raises(IngestError, match="not a folder or a .zip file"):
        ingest([tmp_path / "alice.py"], tmp_path / "stage")
    with pytest.raises(IngestError, match="no such submission"):
        ingest([tmp_path / "nobody"], tmp_path / "stage")


def test_a_flat_canvas_download_is_one_submission_per_student(tmp_path):
    # Canvas puts every file in one folder, each named <login>[_LATE]_<user id>_<attachment id>_<file>
    bulk = make_zip(tmp_path / "submissions.zip", {
        "alice_111_901_blocks.py": CODE,
        "alice_111_902_notes.txt": "n",
        "bob_LATE_222_903_blocks.py": CODE,
        "carol_333_904_day09.zip": zip_bytes({"day09/blocks.py": CODE}),
    })
    found, _ = ingest([bulk], tmp_path / "stage")
    by_id = {i.student: i for i in found}
    assert sorted(by_id) == ["alice", "bob", "carol"]
    assert files_under(by_id["alice"].folder) == {"blocks.py": CODE, "notes.txt": "n"}
    assert files_under(by_id["bob"].folder) == {"blocks.py": CODE} and by_id["bob"].lms.late
    assert files_under(by_id["carol"].folder) == {"blocks.py": CODE}
    assert by_id["alice"].lms.ids["user_id"] == "111"


def test_a_flat_moodle_folder_is_one_submission_per_student(tmp_path):
    dl = tmp_path / "moodle"
    dl.mkdir()
    (dl / "Dave Smith_67890_assignsubmission_file_blocks.py").write_text(CODE)
    (dl / "Eve Adams_67891_assignsubmission_file_blocks.py").write_text(CODE)
    (dl / "Eve Adams_67891_assignsubmission_file_extra.py").write_text("x = 1\n")
    (dl / "Eve Adams_67891_assignsubmission_file_link.py").symlink_to("/etc/passwd")
    found, _ = ingest([dl], tmp_path / "stage")
    by_id = {i.student: i for i in found}
    assert files_under(by_id["Dave-Smith"].folder) == {"blocks.py": CODE}
    assert files_under(by_id["Eve-Adams"].folder) == {"blocks.py": CODE, "extra.py": "x = 1\n"}
    assert "not a regular file" in by_id["Eve-Adams"].problems[0].detail
    assert by_id["Eve-Adams"].lms.ids == {"participant": "67891"}


def test_a_folder_with_other_files_is_still_one_submission(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "blocks.py").write_text(CODE)
    (tmp_path / "alice" / "bob_222_903_blocks.py").write_text(CODE)   # one LMS-looking name is not a download
    [item] = ingest([tmp_path / "alice"], tmp_path / "stage")[0]
    assert item.student == "alice" and item.folder == tmp_path / "alice"


def test_a_file_canvas_renamed_on_a_second_upload_gets_its_name_back(tmp_path):
    # Canvas names a file uploaded again under a name used before vgg-1.py, vgg-2.py, ...
    bulk = make_zip(tmp_path / "submissions.zip", {
        "alice_111_905_blocks-1.py": CODE,
        "alice_111_906_notes.txt": "n",
        "bob_222_907_blocks.py": "old = 1\n",
        "bob_222_908_blocks-2.py": CODE,
        "bob_222_909_blocks-1.py": "older = 1\n",
        "carol_333_910_my-model-3.txt": "m",
    })
    found, _ = ingest([bulk], tmp_path / "stage")
    by_id = {i.student: i for i in found}
    assert files_under(by_id["alice"].folder) == {"blocks.py": CODE, "notes.txt": "n"}
    assert not by_id["alice"].problems
    assert files_under(by_id["bob"].folder) == {"blocks.py": CODE}   # the latest upload
    [problem] = by_id["bob"].problems
    assert "bob_222_907_blocks.py (an earlier upload of blocks.py; the latest, bob_222_908_blocks-2.py" in problem.detail
    assert "bob_222_909_blocks-1.py" in problem.detail
    assert files_under(by_id["carol"].folder) == {"my-model.txt": "m"}


def test_a_moodle_file_name_with_a_number_keeps_it(tmp_path):
    dl = tmp_path / "moodle"
    dl.mkdir()
    (dl / "Dave Smith_67890_assignsubmission_file_blocks-1.py").write_text(CODE)
    found, _ = ingest([dl, ], tmp_path / "stage")
    assert files_under(found[0].folder) == {"blocks-1.py": CODE}
