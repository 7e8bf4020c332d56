"""`sam2_ros label` on an embedded Ray with 2 workers: four tiny bags (detections in one,
a prompts file beside another, MCAP for the third, the fourth corrupt). The three are labelled
with the masks `replay` gives each alone, the corrupt one is reported with its reason, a second
run skips the three, and a run stopped after its first bag finishes the rest when run again,
even with a worker killed on the way. One Ray instance serves the whole module."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sam2_ros.bags import bag_io
from sam2_ros.bags.replay import MASKS_TOPIC, ReplayOptions, replay_bag
from sam2_ros.cli.main import main
from sam2_ros.fleet.bag_list import find_jobs
from sam2_ros.fleet.labeller import MARKER, completed
from sam2_ros.fleet.ray_pool import PoolConfig, label_bags
from sam2_ros.settings import TrackerSettings

ray = pytest.importorskip("ray", reason="Ray is not installed (requirements/lock.txt pins it)")

GOOD = ("det", "clicked", "mcap")
PROMPTS = """\
prompts:
  - frame: 0
    label: circle
    box: [40, 20, 90, 70]
"""
SETTINGS = TrackerSettings(precision="fp32", cpu_threads=1)
OPTIONS = ReplayOptions(progress=False, video=False)
FLAGS = ["--workers", "2", "--precision", "fp32", "--cpu-threads", "1"]


@pytest.fixture(scope="module", autouse=True)
def embedded_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=128 * 1024**2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet") / "bags"
    size = ["--width", "128", "--height", "96", "--duration", "0.6", "--no-depth"]
    assert main(["make-bag", str(root / "det"), *size, "--detector"]) == 0
    assert main(["make-bag", str(root / "clicked"), *size, "--seed", "1"]) == 0
    (root / "clicked.prompts.yaml").write_text(PROMPTS)
    assert main(["make-bag", str(root / "mcap"), *size, "--detector", "--seed", "2",
                 "--storage", "mcap"]) == 0
    shutil.copytree(root / "det", root / "corrupt")
    db3 = next((root / "corrupt").glob("*.db3"))
    db3.write_bytes(db3.read_bytes()[:3000])  # truncated: sqlite calls it malformed
    return root


def _masks(bag: Path) -> list[tuple[int, bytes]]:
    return [(stamp, raw) for _, stamp, _, raw in bag_io.iter_raw_messages(bag, [MASKS_TOPIC])]


@pytest.fixture(scope="module")
def first_run(bags: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("labelled")
    return main(["label", str(bags), "--out", str(out), *FLAGS]), out


def test_labels_each_bag_as_replay_does_and_reports_the_corrupt_one(
    first_run: tuple[int, Path], bags: Path, tmp_path: Path
) -> None:
    code, out = first_run
    assert code == 1  # one bag failed
    summary = json.loads((out / "summary.json").read_text())
    status = {b["name"]: b for b in summary["bags"]}
    assert summary["counts"] == {"done": 3, "failed": 1}
    assert "cannot read bag" in status["corrupt"]["reason"]
    assert "malformed" in status["corrupt"]["reason"]
    assert "corrupt" in (out / "summary.md").read_text()
    assert not (out / "corrupt").exists()
    assert status["clicked"]["prompts"].endswith("clicked.prompts.yaml")
    assert len({status[name]["worker"] for name in GOOD}) == 2  # both workers took bags
    for name in GOOD:
        alone = replay_bag(bags / name, status[name]["prompts"], tmp_path / name, SETTINGS,
                           OPTIONS)
        assert alone.frames == status[name]["frames"] == 6
        assert _masks(out / name / "output_bag") == _masks(tmp_path / name / "output_bag")
        assert status[name]["metrics"]["objects"] >= 1
        assert "J&F_mean" in status[name]["metrics"]  # the synthetic bags have ground truth
        assert (out / name / "preview.png").is_file() and (out / name / MARKER).is_file()
    assert (out / "contact_sheet.png").stat().st_size > 0
    assert [w["bags"] for w in summary["workers"]] in ([1, 2], [2, 1])


def test_second_run_skips_finished_bags(first_run: tuple[int, Path], bags: Path) -> None:
    _, out = first_run
    marked = {name: (out / name / MARKER).stat().st_mtime_ns for name in GOOD}
    assert main(["label", str(bags), "--out", str(out), *FLAGS]) == 1  # corrupt: still
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"skipped": 3, "failed": 1}
    assert {name: (out / name / MARKER).stat().st_mtime_ns for name in GOOD} == marked


def test_interrupted_run_finishes_the_rest_even_when_a_worker_dies(
    bags: Path, tmp_path: Path
) -> None:
    jobs = [j for j in find_jobs([str(bags)]) if j.name in GOOD]
    pool = PoolConfig(workers=2, retries=1)

    def stop_after_first_bag(event: str, data: object) -> None:
        if event == "bag":
            raise KeyboardInterrupt

    first = label_bags(jobs, tmp_path, SETTINGS, OPTIONS, pool, stop_after_first_bag)
    assert first.interrupted
    finished = [r["name"] for r in first.records if r["status"] == "done"]
    assert len(finished) == 1
    assert [completed(tmp_path, j.name) is not None for j in jobs].count(True) == 1
    killed: list[str] = []

    def kill_a_worker_mid_bag(event: str, data: object) -> None:
        if event == "frames" and not killed:
            for worker, (bag, done, total) in data.items():
                if 0 < done < total:
                    killed.append(bag)
                    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
                    return

    again = label_bags(jobs, tmp_path, SETTINGS, OPTIONS, pool, kill_a_worker_mid_bag)
    status = {r["name"]: r for r in again.records}
    assert status[finished[0]]["status"] == "skipped"
    assert all(status[j.name]["status"] in ("done", "skipped") for j in jobs), [
        (r["name"], r["status"], r.get("reason")) for r in again.records]
    assert killed, "no worker was seen mid-bag to be killed"
    assert status[killed[0]]["attempts"] == 2 and status[killed[0]]["status"] == "done"
    assert all(completed(tmp_path, j.name) for j in jobs)


def test_without_ray_one_line_says_how_to_install_it(bags: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None\n"
            "from sam2_ros.cli.main import main\n"
            f"sys.exit(main(['label', {str(bags / 'det')!r}, '--out', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert "needs Ray: pip install 'sam2_ros[fleet]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_engine_replay_and_cli_do_not_import_ray() -> None:
    code = ("import sys, sam2_ros.engine.streaming_tracker, sam2_ros.bags.replay, "
            "sam2_ros.cli.main, sam2_ros.fleet.labeller, sam2_ros.fleet.ray_pool\n"
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr
