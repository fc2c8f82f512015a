"""benchmarks/gpu_study.py end to end on the CPU (--tiny, synthetic images and faces), and the
deadline that keeps the GPU study inside its budget."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.gpu_study import main, plans, run_cnn, table
from fmtool.engine.training import deadline_stop
from tests.helpers.faces import write_faces

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_tiny_study_runs_every_row_and_writes_its_table(tiny_fashion: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture):
    write_faces(tmp_path / "faces", people=6, per_person=6, size=64)
    out = tmp_path / "study.json"
    main(["--tiny", "--device", "cpu", "--fashion-dir", str(tiny_fashion), "--faces-dir",
          str(tmp_path / "faces"), "--out", str(out), "--work", str(tmp_path / "runs")])
    report = json.loads(out.read_text())
    rows = {row["label"]: row for row in report["runs"]}
    assert list(rows) == ["paper, code", "paper, text", "strong", "vae paper"]
    assert not any("error" in row for row in rows.values())
    assert [rows[name]["variant"] for name in ("paper, code", "paper, text", "strong")] == [
        "code", "text", "text"]
    for name in ("paper, code", "paper, text", "strong"):
        row = rows[name]
        assert row["epochs"] == row["planned_epochs"] == 1 and not row["stopped_early"]
        assert 0 <= row["final_test_acc"] <= row["best_test_acc"] <= 1
    assert "picked_on_val_test_acc" in rows["strong"]  # strong holds images out; paper does not
    assert "picked_on_val_test_acc" not in rows["paper, code"]
    assert rows["vae paper"]["planned_epochs"] == 2 and "stopped_early" in rows["vae paper"]
    assert 1 <= rows["vae paper"]["epochs"] <= 2 and rows["vae paper"]["final_val_psnr"] > 0
    assert report["face_cache_seconds"] >= 0  # decoded before the timed runs, timed apart
    assert 0 < rows["vae paper"]["final_val_ssim"] <= 1
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["run", "variant"] and len(table) == 1 + 4 + 1
    assert table[1].startswith("paper, code") and "%" in table[1]
    assert (tmp_path / "runs" / "data" / "runs" / "vae" / "4-vae-paper" / "best.pt").is_file()


def test_without_time_left_each_row_says_so(tiny_fashion: Path, tmp_path: Path):
    report = main(["--tiny", "--device", "cpu", "--minutes", "0", "--fashion-dir",
                   str(tiny_fashion), "--faces-dir", str(tmp_path), "--work", str(tmp_path)])
    assert [row.get("error") for row in report["runs"]] == ["UserError: no time left"] * 4


def test_the_deadline_stops_at_an_epochs_end_when_the_next_would_not_fit():
    now = [100.0]
    trainer = SimpleNamespace(state=SimpleNamespace(step=0))
    stop = deadline_stop(trainer, deadline=130.0, clock=lambda: now[0])
    trainer.state.step, now[0] = 5, 110.0
    assert stop() is False  # within the first epoch, before the deadline
    trainer.state.step = 0
    assert stop() is False  # the epoch took 10 s; 20 s are left
    now[0] = 122.0
    assert stop() is True  # this one took 12 s; only 8 s are left
    trainer.state.step, now[0] = 3, 131.0
    assert stop() is True  # within an epoch, past the deadline


def test_a_run_the_deadline_stops_says_so_in_the_table_and_the_json(tiny_fashion: Path,
                                                                    tmp_path: Path):
    import time

    plan = plans(tiny=True)[0]
    row = run_cnn(plan, "late", tiny_fashion, "cpu", deadline=time.monotonic() - 1, tiny=True)
    assert row["stopped_early"] is True and row["planned_epochs"] == 1 and row["epochs"] == 0
    shown = table([{"label": plan.label, **row}, {"label": "done", "epochs": 60,
                                                  "planned_epochs": 60, "stopped_early": False},
                   {"label": "stopped", "epochs": 23, "planned_epochs": 60,
                    "stopped_early": True}]).splitlines()
    assert "0/1 (stopped at the deadline)" in shown[1]
    assert shown[2].split()[:2] == ["done", "-"] and "60" in shown[2] and "/" not in shown[2]
    assert "23/60 (stopped at the deadline)" in shown[3]
