"""`python -m mempill.lab crash-states`: the persistence models on hand-made operation
lists, the strace parser on hand-written trace lines, and small real runs (a few claims,
capped states) in which the store as shipped survives every state and each control fails."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from mempill.lab.durability import images, recorder, states
from mempill.lab.durability.harness import HarnessError
from mempill.lab.durability.images import ROOT, CrashPoint, Op, Replay, Unit


def _strace_problem() -> str | None:
    if shutil.which("strace") is None:
        return recorder.MISSING
    done = subprocess.run(["strace", "-o", os.devnull, "true"], capture_output=True, check=False)
    return None if done.returncode == 0 else f"strace cannot trace here: {done.stderr[-200:]!r}"


STRACE = _strace_problem()
needs_strace = pytest.mark.skipif(STRACE is not None, reason=str(STRACE))


def create(inode: int, name: str, folder: int = ROOT, kind: str = "create") -> Op:
    return Op(kind, inode, name, changes=((folder, name.rpartition("/")[2], inode),))


def write(inode: int, offset: int, data: bytes) -> Op:
    return Op("write", inode, f"inode {inode}", offset, data)


def every_image(replay: Replay, point: CrashPoint) -> list[images.Image]:
    chosen, exhaustive = states.plan([point], 10_000, random.Random(0))
    assert exhaustive
    return [replay.image(point, v, lambda n: b"\xee" * n) for v in chosen[0][1]]


# ---------------------------------------------------------------- the models


def test_reorder_persists_or_drops_each_pending_write_and_fsync_settles_them() -> None:
    ops = [
        create(1, "f"),
        write(1, 0, b"aaaa"),
        Op("fsync", 1, "f"),
        write(1, 1, b"bb"),
        write(1, 4, b"cc"),
    ]
    replay = Replay(ops, "reorder")
    points = replay.points([])
    # before the create, before the fsync, at the end: the writes only add pending units
    assert [p.index for p in points] == [0, 2, 5]
    assert points[1].size == 2 and points[2].size == 4
    found = sorted(image["f"] or b"" for image in every_image(replay, points[2]))
    assert found == [b"aaaa", b"aaaacc", b"abba", b"abbacc"]
    assert every_image(replay, points[0]) == [{}]  # the initial image: an empty root


def test_a_rename_is_not_durable_until_its_folder_is_synced() -> None:
    ops = [
        create(1, "a.tmp"),
        write(1, 0, b"new"),
        Op("fsync", 1, "a.tmp"),
        Op("dirsync", ROOT, "."),
        Op("rename", 1, "a.tmp -> a", changes=((ROOT, "a.tmp", None), (ROOT, "a", 1))),
        Op("dirsync", ROOT, "."),
    ]
    lost = Replay(ops, "lost-dirent")
    before_sync, end = [p for p in lost.points([]) if p.index in (5, 6)]
    assert [u.op for u in before_sync.units] == [4]
    assert sorted(map(sorted, every_image(lost, before_sync))) == [["a"], ["a.tmp"]]
    assert every_image(lost, end) == [{"a": b"new"}]
    # the create was made durable by the first folder sync; before it, the file may vanish
    before_first = next(p for p in lost.points([]) if p.index == 3)
    assert sorted(map(sorted, every_image(lost, before_first))) == [[], ["a.tmp"]]
    reorder = Replay(ops, "reorder")  # entries durable at once: only the renamed file
    assert every_image(reorder, reorder.points([])[-1]) == [{"a": b"new"}]


def test_a_folder_not_synced_in_its_parent_takes_its_contents_with_it() -> None:
    ops = [
        create(1, "d", kind="mkdir"),
        create(2, "d/f", folder=1),
        write(2, 0, b"data"),
        Op("fsync", 2, "d/f"),
        Op("dirsync", 1, "d"),
    ]
    replay = Replay(ops, "lost-dirent")
    end = replay.points([])[-1]
    assert [(u.op, u.folder) for u in end.units] == [(0, ROOT)]  # d's entry in the root
    assert sorted(map(sorted, every_image(replay, end))) == [[], ["d", "d/f"]]
    assert {"d": None, "d/f": b"data"} in every_image(replay, end)


def test_lost_dirent_drops_unsynced_data_even_of_a_durable_file() -> None:
    ops = [create(1, "f"), Op("dirsync", ROOT, "."), write(1, 0, b"lost")]
    replay = Replay(ops, "lost-dirent")
    assert every_image(replay, replay.points([])[-1]) == [{"f": b""}]


def test_a_torn_write_is_cut_at_sector_boundaries_of_the_file_offset() -> None:
    data = bytes(range(256)) * 4  # 1024 bytes at offset 100
    ops = [create(1, "f"), write(1, 100, data)]
    replay = Replay(ops, "torn-write", sector=512)
    end = replay.points([])[-1]
    assert [(u.start, u.end, u.arity) for u in end.units] == [
        (0, 412, 3),
        (412, 924, 3),
        (924, 1024, 3),
    ]
    assert end.size == 27
    image = replay.image(end, (1, 0, 2), lambda n: b"\xee" * n)
    expected = bytes(100) + data[:412] + bytes(512) + b"\xee" * 100
    assert image["f"] == expected
    assert len(Replay(ops, "torn-write", sector=4096).points([])[-1].units) == 1


def test_acks_make_a_crash_point_and_are_counted_there() -> None:
    ops = [create(1, "f"), write(1, 0, b"x"), write(1, 1, b"y"), Op("fsync", 1, "f")]
    points = Replay(ops, "reorder").points([2, 4])
    assert [(p.index, p.acked) for p in points] == [(0, 0), (2, 1), (3, 1), (4, 2)]
    assert points[1].size == 2  # the ack after the first write: only it is pending


def test_the_plan_checks_everything_when_small_and_spreads_the_budget_otherwise() -> None:
    def point(index: int, *arities: int) -> CrashPoint:
        return CrashPoint(index, 0, {}, {}, tuple(Unit(i, a) for i, a in enumerate(arities)))

    points = [point(0, 2), point(1, 2, 2), point(2, *[2] * 10)]
    chosen, exhaustive = states.plan(points, 2000, random.Random(1))
    assert exhaustive and [len(v) for _, v in chosen] == [2, 4, 1024]
    chosen, exhaustive = states.plan(points, 20, random.Random(1))
    assert not exhaustive and [len(v) for _, v in chosen] == [2, 4, 14]
    sampled = chosen[2][1]
    assert len(set(sampled)) == 14 and sampled[:2] == [(0,) * 10, (1,) * 10]
    chosen, _ = states.plan(points, 2, random.Random(1))
    assert len(chosen) == 2 and all(len(v) == 1 for _, v in chosen)


# ---------------------------------------------------------------- the trace parser


def hx(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return "".join(f"\\x{b:02x}" for b in raw)


def test_the_parser_follows_names_descriptors_writes_syncs_and_acks() -> None:
    root = "/r"
    db = f"{root}/agents/x.db"
    ack = hx("ack ref-1 1\n")
    lines = [
        f'7 mkdir("{hx(root + "/agents")}", 0700) = 0',
        f'7 openat(AT_FDCWD<{hx("/")}>, "{hx(db)}", O_RDWR|O_CREAT|O_CLOEXEC, 0600) = 3<{hx(db)}>',
        f'7 openat(AT_FDCWD<{hx("/")}>, "{hx(db + "-shm")}", O_RDWR|O_CREAT, 0600)'
        f" = 4<{hx(db + '-shm')}>",
        f'7 pwrite64(4<{hx(db + "-shm")}>, "{hx(b"s")}", 1, 4095) = 1',
        f'7 pwrite64(3<{hx(db)}>, "{hx(b"hello")}", 5, 8 <unfinished ...>',
        "7 <... pwrite64 resumed>) = 5",
        f"7 fdatasync(3<{hx(db)}>) = 0",
        f'7 write(1<pipe:[9]>, "{ack}", 12) = 12',
        f'7 openat(AT_FDCWD<{hx("/")}>, "{hx(root + "/agents")}", O_RDONLY|O_DIRECTORY) = 5'
        f"<{hx(root + '/agents')}>",
        f"7 fsync(5<{hx(root + '/agents')}>) = 0",
        f'7 unlink("{hx(db + "-gone")}") = -1 ENOENT (No such file or directory)',
        f'7 openat(AT_FDCWD<{hx("/")}>, "{hx("/elsewhere")}", O_RDWR|O_CREAT, 0600) = 6'
        f"<{hx('/elsewhere')}>",
        f'7 pwrite64(6<{hx("/elsewhere")}>, "{hx(b"zz")}", 2, 0) = 2',
        f"7 ftruncate(3<{hx(db)}>, 4) = 0",
        f'7 unlink("{hx(db + "-shm")}") = 0',
    ]
    ops, acks = recorder.parse(lines, root)
    assert [op.describe() for op in ops] == [
        "mkdir agents",
        "create agents/x.db",
        "write 5 bytes at 8 to agents/x.db",
        "fsync agents/x.db",
        "dirsync agents",
        "truncate agents/x.db to 4",
    ]
    assert ops[2].data == b"hello" and ops[1].changes == ((ops[0].inode, "x.db", ops[1].inode),)
    assert acks == [(4, ("ref-1", 1))]


def test_the_parser_refuses_what_it_cannot_model() -> None:
    db = "/r/x.db"
    opened = f'1 openat(AT_FDCWD<{hx("/")}>, "{hx(db)}", O_RDWR|O_CREAT, 0600) = 3<{hx(db)}>'
    for line in (
        f'1 writev(3<{hx(db)}>, [{{iov_base="{hx("a")}", iov_len=1}}], 1) = 1',
        f'1 write(3<{hx(db)}>, "{hx("a")}", 1) = 1',
        f"1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3<{hx(db)}>, 0) = 0x7f00",
        f'1 pwrite64(9<{hx(db)}>, "{hx("a")}", 1, 0) = 1',  # a descriptor never seen open
    ):
        with pytest.raises(HarnessError):
            recorder.parse([opened, line], "/r")


# ---------------------------------------------------------------- real runs


@needs_strace
def test_the_recording_replays_to_the_files_the_writer_left(tmp_path: Path) -> None:
    recording = recorder.record(tmp_path, "FULL", 3, 5)
    left = {
        str(path.relative_to(tmp_path / "root")): None if path.is_dir() else path.read_bytes()
        for path in (tmp_path / "root").rglob("*")
    }
    assert "agents/durability.db" in left and len(recording.acks) == 3
    for model in images.MODELS:
        replay = Replay(recording.ops, model)
        end = replay.points([p for p, _ in recording.acks])[-1]
        assert replay.image(end, (1,) * len(end.units), bytes) == left, model


@needs_strace
def test_every_model_passes_as_shipped_and_every_control_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--backend", "sqlite", "--model", "all", "--claims", "3", "--max-states", "25"]
    status = states.main([*argv, "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0, rows
    assert sorted((r["model"], r["role"]) for r in rows) == sorted(
        (m, role) for m in images.MODELS for role in ("measured", "control")
    )
    for row in rows:
        assert row["operations"] > 100 and row["acks"] == 3
        assert row["states_checked"] >= 8, row
        if row["role"] == "measured":
            assert (row["sync"], row["dirsync"]) == ("FULL", True)
            assert row["states_failed"] == 0 and row["failures"] == [], row
        else:
            assert row["states_failed"] > 0 and row["failures"], row
            assert any("lost" in f for f in row["failures"][0]["failed"])
    assert states.exit_status([{**rows[0], "verdict": "FAILED"}]) == 1
    assert states.exit_status([{**rows[0], "verdict": "INERT CONTROL"}]) == 3


def test_without_strace_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no strace on it
    assert states.main(["--backend", "sqlite", "--model", "reorder"]) == 2
    assert "strace is missing (apt-get install -y strace)" in capsys.readouterr().err


def test_bad_arguments_exit_2() -> None:
    for argv in (["--backend", "postgres", "--model", "all"], ["--backend", "sqlite"]):
        with pytest.raises(SystemExit) as raised:
            states.parse(argv)
        assert raised.value.code == 2
    with pytest.raises(SystemExit):
        states.parse(["--backend", "sqlite", "--model", "all", "--sector", "1000"])
