"""The tools that cannot run here for real get a dry run, so a GPU session is not spent on a typo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p3m_live.spec import TEMPORALS

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_on_the_cpu(seed32_ckpt, tmp_path):
    """Also without PyAV, which the GPU machine lacks (an ``av`` that fails to import)."""
    no_av = tmp_path / "no_av"
    no_av.mkdir()
    (no_av / "av.py").write_text("raise ImportError('no PyAV on the GPU machine')\n")
    env = {**os.environ, "PYTHONPATH": str(no_av)}
    cmd = [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--size", "96x64", "--quick"]
    cmd += ["--weights", str(seed32_ckpt), "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    (row,) = json.loads((tmp_path / "gpu_check.json").read_text())["sizes"]
    assert row["frame"] == "96x64" and row["errors"] == []
    assert row["alpha_mean_abs_levels"] == 0.0 and row["run_ahead_identical"] is True  # CPU against CPU
    assert row["end_to_end_ms_p50"] > 0 and row["batch4_ms_per_frame"] > 0 and "graph_replay_ms_p50" not in row
    assert row["planes_end_to_end_ms_p50"] > 0 and "planes_replay_ms_p50" not in row
    assert row["motion_end_to_end_ms_p50"] > 0 and "motion_replay_ms_p50" not in row
    assert row["fg_track_end_to_end_ms_p50"] > 0 and row["fg_track_mean_abs_levels"] == 0.0
    assert "| 96x64 |" in (tmp_path / "gpu_check.md").read_text()


def test_gpu_session_script_dry_run(tmp_path):
    """tools/gpu_session.sh, the one command a GPU machine gets, run here on the CPU."""
    r = subprocess.run(
        ["bash", str(ROOT / "tools" / "gpu_session.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable},  # this venv's, whatever PATH says
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| 96x64 |" in (tmp_path / "gpu_check.md").read_text()
    bench = (tmp_path / "bench_pipeline.md").read_text()
    assert bench.count("| overlapped |") == 2 and "batch 1 exit: 0" in bench and "batch 4 exit: 0" in bench
    assert "gpu_check exit: 0" in (tmp_path / "gpu_check.log").read_text()
    hdr = (tmp_path / "bench_hdr.md").read_text()
    assert "| 160x96 |" in hdr and "bench_hdr exit: 0" in hdr
    tracks = (tmp_path / "bench_tracks.md").read_text()
    assert "| --fg-out .mov |" in tracks and "bench_tracks exit: 0" in tracks


def table_rows(tool: str, *args: str) -> list[list[str]]:
    """Run ``tools/<tool>`` with ``args`` and give the cells of its table's rows (header rows too)."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / tool), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return [[c.strip() for c in line.split("|")[1:-1]] for line in r.stdout.splitlines() if line.startswith("| ")]


def test_bench_start_prints_its_table():
    args = ("--size", "96x64", "--seconds", "10", "--start", "8", "--gop", "25", "--rounds", "1")
    rows = {cells[0]: cells[1:] for cells in table_rows("bench_start.py", *args)}
    before, after = rows["all decoded (before)"], rows["from the keyframe before"]
    assert before[1] == after[1] == "25"  # the same part, a second of frames
    assert int(after[2]) < int(before[2]) / 2  # from the keyframe at 6 s (before 8 - 1 s), not from 0


def test_bench_launch_prints_its_table():
    from p3m_live.backends import _gpu_driver

    rows = {cells[0]: cells[1:] for cells in table_rows("bench_launch.py", "--runs", "1")}
    plain, first = rows["ONNX Runtime, graph cached (p3m-live)"], rows["the same, torch imported first"]
    assert first[0] == "True" and float(plain[1]) > 0 and float(plain[2]) > 0
    if not _gpu_driver():  # (with a GPU driver, torch is asked whether it sees the GPU)
        assert plain[0] == "False"


def test_bench_turns_prints_its_table():
    rows = [c for c in table_rows("bench_turns.py", "--size", "96x64", "--rounds", "2") if c[0] == "96x64"]
    assert [c[1] for c in rows] == ["270 cw", "180 cw", "90 cw", "mirror", "270 cw + mirror"]
    assert all(c[5] == "yes" and float(c[3]) > 0 for c in rows)  # the same pixels both ways


def test_bench_photo_times_alpha_pngs():
    rows = {c[0]: c[1:] for c in table_rows("bench_photo.py", "--png", "--photo", "640x480", "--sizes", "64x48",
                                             "--rounds", "1")}  # fmt: skip
    for name in ("screenshot (opaque)", "logo (half transparent)"):
        twice, once, ratio = (float(c) for c in rows[name])
        assert twice > 0 and once > 0 and ratio == pytest.approx(twice / once, rel=0.1, abs=0.05)


def test_bench_photo_prints_its_table():
    rows = [
        c for c in table_rows("bench_photo.py", "--photo", "800x600", "--sizes", "320x180,800x600", "--rounds", "1")
    ]
    decoded = {c[0]: c[1] for c in rows if c[0] in ("320x180", "800x600")}
    assert decoded == {"320x180": "1/2", "800x600": "1/1"}  # (halved still covers 320x180; the photo's own size is not)
    assert all(float(c[2]) > 0 and float(c[3]) > 0 for c in rows if c[0] in decoded)
    (check,) = [c for c in rows if c[0] == "the check of --background"]
    assert check[1] == "1/8" and float(check[2]) > 0 and float(check[3]) > 0


def test_bench_framing_prints_its_table(fast_models):
    args = ("--size", "160x96", "--iters", "2", "--repeat", "1")
    (row,) = [c for c in table_rows("bench_framing.py", *args) if c[0] == "160x96"]
    graph, framing, ratio = (float(c) for c in row[1:])
    assert graph > 0 and framing > 0 and ratio == pytest.approx(framing / graph, rel=0.1, abs=0.002)


def test_bench_camera_prints_its_table(fast_models):
    args = ("--camera", "yuyv422:96x64", "--iters", "2", "--repeat", "1")
    (row,) = [c for c in table_rows("bench_camera.py", *args) if c[0] == "yuyv422 96x64"]
    before, now, ratio = (float(c) for c in row[1:])
    assert before > 0 and now > 0 and ratio == pytest.approx(before / now, rel=0.1, abs=0.02)


def test_bench_tracks_prints_its_table():
    args = ("--size", "640x480", "--iters", "2", "--repeat", "1")
    rows = {c[0]: c[1:] for c in table_rows("bench_tracks.py", *args) if c[0].split()[0] in ("--alpha-out", "--fg-out")}
    assert {"--alpha-out .mov", "--fg-out .mov"} <= set(rows) and rows["--alpha-out .mov"][0] == "yuva444p10le"
    for _, *cells in rows.values():
        before, now, ratio, encoder = (float(c) for c in cells)
        assert before > 0 and now > 0 and encoder > 0 and ratio == pytest.approx(before / now, rel=0.2, abs=0.1)


def test_bench_camera_times_the_change_of_matrix():
    args = ("--matrix", "96x64", "--iters", "2", "--repeat", "1")
    (row,) = [c for c in table_rows("bench_camera.py", *args) if c[0] == "96x64"]
    accurate, fast, ours, ratio = (float(c) for c in row[1:])
    assert min(accurate, fast, ours) > 0 and ratio == pytest.approx(accurate / ours, rel=0.1, abs=0.2)


def test_bench_cpu_use_prints_its_table(fast_models):
    args = ("--size", "96x64", "--threads", "1", "--frames", "4", "--repeat", "1", "--fps", "200")
    rows = {c[1].split(":")[0]: [float(v) for v in c[2:]] for c in table_rows("bench_cpu_use.py", *args) if c[0] == "1"}
    assert set(rows) == {"on", "off"}
    for took, p90, cpu, fps, flat_cpu in rows.values():
        assert 0 < took <= p90 and cpu > 0 and fps > 0 and flat_cpu > 0


def test_bench_onnx_compares_two_exports(fast_models, tmp_path):
    """Two exports of the same code: the shared graphs are timed, their ratio is theirs, and
    their outputs are the same; a graph only one folder has is left out."""
    for folder, kinds in (("a", ["color", "image"]), ("b", ["color"])):
        args = ["export", str(tmp_path / folder), "--size", "96x64", *(x for k in kinds for x in ("--background", k))]
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_onnx.py"), *args], capture_output=True,
                           text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    rows = table_rows("bench_onnx.py", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--iters", "2")
    (row,) = [c for c in rows if c[0].startswith("96x64")]
    before, after, ratio = (float(c) for c in row[1:4])
    assert row[0] == "96x64_color" and before > 0 and after > 0
    assert ratio == pytest.approx(after / before, rel=0.1, abs=0.02)
    assert row[4] == "0, 0.000" and row[5] == "0, 0.000"


def test_bench_foreground_prints_its_table(fast_models):
    """One portrait at 160x96: a row for each way, the frame's own as the unit, and the
    estimates with less edge error than it."""
    args = ("--size", "160x96", "--limit", "1", "--iters", "2", "--rounds", "1")
    rows = {c[1]: c[2:] for c in table_rows("bench_foreground.py", *args) if c[0] == "160x96"}
    assert list(rows) == ["frame", "quick", "estimate"]
    assert rows["frame"][2] == "1.00" and rows["frame"][4] == "1.00"
    assert rows["quick"][0] == "1/2" and rows["estimate"][0] == "1/1"
    assert all(float(rows[way][2]) < 1.0 and float(rows[way][3]) > 0 for way in ("quick", "estimate"))


def test_soak_live_prints_a_row_a_minute(fast_models):
    """A few seconds of it: the one minute begun has its row, and the frames came out."""
    cmd = [sys.executable, str(ROOT / "tools" / "soak_live.py"), "--minutes", "0.1", "--size", "96x64"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (row,) = [line.split("|")[1:-1] for line in r.stdout.splitlines() if line.startswith("| 1 |")]
    assert float(row[1]) > 0 and float(row[2]) > 10  # RSS MiB, out fps (30 paced, less on a busy machine)
    frames_out = int(r.stdout.split(" out, ")[0].rsplit(", ", 1)[1])
    assert frames_out > 60  # of about 180 in 6 s
    assert "background blur" in r.stdout and "foreground: frame" in r.stdout  # (a CPU live run over the blur)


def test_bench_decode_lag_prints_its_table():
    import os

    rows = [c for c in table_rows("bench_decode_lag.py", "--size", "160x96", "--frames", "12", "--repeat", "1")]
    held = {c[1]: int(c[2]) for c in rows if c[0] == "160x96"}
    assert held["slice only (live)"] == 0
    if (os.cpu_count() or 1) > 1:
        assert [v for k, v in held.items() if k.startswith("frame + slice")][0] > 0


STUDIES = ("look-ahead 1", "forward-backward")  # (offline temporal filters measured, not built)


def test_bench_quality_prints_its_tables():
    """On one shared portrait: every table, the blur's among them, with the room-alone blur's
    error below the whole frame's."""
    from tests.conftest import PORTRAITS

    cmd = [sys.executable, str(ROOT / "tools" / "bench_quality.py"), "--data", str(PORTRAITS), "--limit", "1"]
    r = subprocess.run([*cmd, "--frames", "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(f"# {k}. " in r.stdout for k in "abcd")
    assert all(f"| {motion} | {study} (study) | " in r.stdout for motion in ("still", "moving") for study in STUDIES)
    whole, alone = (float(r.stdout.split(f"| {name} | ")[1].split(" |")[0]) for name in ("whole frame", "room alone"))
    assert alone < whole / 2


def test_bench_fast_prints_both_tables(fast_models):
    """On one portrait: the fast model's quality table, and its own mattes under each
    temporal filter, where the adaptive filter damps the flicker on a still subject and the
    motion filter more of it on a moving one."""
    from tests.conftest import PORTRAITS

    cmd = [sys.executable, str(ROOT / "tools" / "bench_fast.py"), "--data", str(PORTRAITS), "--limit", "1"]
    r = subprocess.run([*cmd, "--frames", "6"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "# a. " in r.stdout and "# b. " in r.stdout
    table = r.stdout.split("# b. ")[1].split("\n\n")[0]
    cells = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ")]
    dtssd = {(c[0].strip(), c[1].strip()): float(c[3]) for c in cells[2:]}  # (after the header rows)
    assert set(dtssd) == {(s, f) for s in ("0", "1", "3") for f in TEMPORALS}
    assert dtssd[("0", "adaptive")] < dtssd[("0", "off")] * 0.8
    assert dtssd[("1", "motion")] < dtssd[("1", "adaptive")] * 0.95
