"""README's install without ROS, as a new user runs it: a fresh venv with only torch, Meta's
sam2 and `pip install .` (no ROS wheels, no colcon install on any path) runs the tools.

The venv's first two installs (torch, sam2) are kept between runs in a cache folder keyed
by README's lines, setup.py, the training pins and the Python version
(SAM2_ROS_VENV_CACHE, default ~/.cache/sam2_ros/fresh-venv); `pip install .` runs on
every run, from a copy of the checkout's files as a fresh clone has them. Venvs of other
keys are removed once no run uses them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRUBBED = ("PYTHONPATH", "AMENT_PREFIX_PATH", "LD_LIBRARY_PATH", "CMAKE_PREFIX_PATH",
            "COLCON_PREFIX_PATH", "VIRTUAL_ENV", "PYTHONHOME", "SAM2_ROS_TRAIN_SITE")
INSTALL_TIMEOUT_S = 900
COMMAND_TIMEOUT_S = 300
PROMPTS = "prompts:\n  - frame: 0\n    label: shape\n    box: [60, 50, 160, 140]\n"


def readme_install_lines() -> list[str]:
    """The commands of README's paragraph on installing without ROS (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^Without ROS or colcon.*?```bash\n(.*?)```", text, re.S | re.M)
    assert match, "README.md has no 'Without ROS or colcon' paragraph with a bash block"
    lines = [line.split("#")[0].strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line]


@dataclass(frozen=True)
class Venv:
    """The fresh venv and the copy of the checkout it was installed from."""

    root: Path
    source: Path

    def env(self) -> dict[str, str]:
        """The caller's environment without ROS, colcon or the project's venv on any path."""
        env = {k: v for k, v in os.environ.items()
               if k not in SCRUBBED and not k.startswith("ROS_")}
        env.update(PATH=f"{self.root / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                   VIRTUAL_ENV=str(self.root), PYTHONNOUSERSITE="1", MPLBACKEND="Agg")
        return env

    def run(self, command: str, cwd: Path, timeout: float = COMMAND_TIMEOUT_S,
            ok: bool = True) -> subprocess.CompletedProcess:
        """Run a shell command line in the venv; with ``ok``, assert it exits 0."""
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=self.env(), text=True,
                              capture_output=True, timeout=timeout)
        if ok:
            assert done.returncode == 0, (
                f"`{command}` exited {done.returncode}\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}")
            assert "Traceback" not in done.stderr, done.stderr[-3000:]
        return done


def _copy_checkout(dest: Path) -> Path:
    """The checkout's tracked and new (not ignored) files, as a fresh clone would have them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _remove_unused_venvs(cache: Path, keep: str) -> None:
    """Remove the cached venvs of other keys (older README or setup.py) no run is using."""
    for other in cache.glob("*.lock"):
        if other.stem == keep:
            continue
        with open(other) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # in use by another run
            shutil.rmtree(cache / other.stem, ignore_errors=True)
            other.unlink()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    """README's commands in a venv: the first ones cached, `pip install .` every run."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the test installs the checkout's files")
    *base, install = readme_install_lines()
    key_text = "\n".join([*base, (ROOT / "setup.py").read_text(),
                          (ROOT / "requirements" / "train.txt").read_text(), sys.version])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("SAM2_ROS_VENV_CACHE",
                                Path.home() / ".cache" / "sam2_ros" / "fresh-venv"))
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / key
    with open(cache / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one test run at a time per venv
        _remove_unused_venvs(cache, keep=key)
        source = _copy_checkout(tmp_path_factory.mktemp("checkout"))
        made = Venv(root, source)
        if not (root / ".complete").is_file():
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(root)], check=True,
                           env=made.env())
            for line in base:
                made.run(line, source, INSTALL_TIMEOUT_S)
            (root / ".complete").write_text("\n".join(base) + "\n")
        made.run(install, source, INSTALL_TIMEOUT_S)
        yield made


@pytest.fixture(scope="module")
def work(venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the prompts file and two bags the venv's `make-bag` wrote: an MCAP bag
    with a detector's topic and a sqlite3 bag without one."""
    work = tmp_path_factory.mktemp("work")
    (work / "prompts.yaml").write_text(PROMPTS)
    small = "--width 256 --height 192 --fps 5 --duration 1.2 --objects 2"
    made = venv.run(f"sam2_ros make-bag det {small} --detector --storage mcap", work)
    assert "/detections  vision_msgs/msg/Detection2DArray" in made.stdout, made.stdout
    venv.run(f"sam2_ros make-bag plain {small} --no-depth --seed 3", work)
    for bag, ending in (("det", ".mcap"), ("plain", ".db3")):
        assert (work / bag / "metadata.yaml").is_file()
        assert any(p.name.endswith(ending) for p in (work / bag).iterdir()), bag
    return work


def test_the_venv_has_torch_and_sam2_and_no_ros(venv: Venv) -> None:
    probe = ("import importlib.util as u, torch, sam2; "
             "print(torch.__version__, u.find_spec('rclpy') is None, "
             "u.find_spec('sam2_ros.msg') is None)")
    out = venv.run(f'python -c "{probe}"', venv.source).stdout.split()
    pinned = re.search(r"torch==(\S+)", readme_install_lines()[0])
    assert pinned and out[0].split("+")[0] == pinned.group(1), (
        f"pip install . replaced README's torch: {out[0]}")
    assert out[1:] == ["True", "True"], "rclpy or colcon's generated interfaces are importable"


def _assert_replayed(out: Path, stdout: str) -> dict:
    for name in ("output_bag/metadata.yaml", "overlay.mp4", "metrics.json", "metrics.md",
                 "visibility.png"):
        assert (out / name).is_file(), f"replay wrote no {name}:\n{stdout}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == 6, metrics
    return metrics


@pytest.mark.parametrize("bag", ["det", "plain"], ids=["mcap-detections", "sqlite3"])
def test_replay_with_a_prompts_file(venv: Venv, work: Path, bag: str) -> None:
    out = work / f"replay-{bag}"
    done = venv.run(f"sam2_ros replay {bag} --prompts prompts.yaml --out {out.name}", work)
    _assert_replayed(out, done.stdout)
    if bag == "det":
        assert re.search(r"detections \(/detections\): \d+ messages", done.stdout), done.stdout
    topics = (out / "output_bag" / "metadata.yaml").read_text()
    assert "vision_msgs/msg/Detection2DArray" in topics  # ~/detections written without ROS


def test_evaluate_one_scene(venv: Venv, work: Path) -> None:
    venv.run("sam2_ros evaluate --scenes 1 --frames 4 --json evaluate.json", work)
    scores = json.loads((work / "evaluate.json").read_text())
    assert scores, "evaluate wrote an empty JSON"


def test_commands_without_their_extras_say_one_line(venv: Venv, work: Path) -> None:
    for command in ("demo --duration 1", "train --steps 1 --out train-out"):
        done = venv.run(f"sam2_ros {command}", work, ok=False)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (command, done.stderr)
        assert "Traceback" not in done.stderr


def test_fleet_label_two_bags_with_one_worker(venv: Venv, work: Path) -> None:
    if venv.run("sam2_ros label --help", work, ok=False).returncode != 0:
        pytest.skip("`sam2_ros label` does not exist yet (issue 35 adds it): not run")
    has_ray = venv.run("python -c 'import ray'", work, ok=False).returncode == 0
    if not has_ray:  # README's `pip install .` alone: the command says what to install
        without = venv.run("sam2_ros label det plain --out label-no-ray --workers 1 "
                           "--prompts prompts.yaml", work, ok=False)
        assert without.returncode != 0 and "[fleet]" in without.stderr, without.stderr
        assert "Traceback" not in without.stderr
    install = readme_install_lines()[-1].replace("install .", "install '.[fleet]'")
    venv.run(install, venv.source, INSTALL_TIMEOUT_S)
    try:
        venv.run("sam2_ros label det plain --out labels --workers 1 --prompts prompts.yaml",
                 work, COMMAND_TIMEOUT_S * 2)
        for bag in ("det", "plain"):
            assert (work / "labels" / bag / "output_bag" / "metadata.yaml").is_file(), bag
        assert (work / "labels" / "summary.json").is_file()
    finally:  # the cached venv keeps only README's base installs and the package
        venv.run("pip uninstall --yes ray", venv.source, ok=False)
