"""`pip install .` gives the ROS-free engine and the `sam2_ros` command without colcon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_pip_install_gives_engine_and_console_script(tmp_path: Path) -> None:
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert (target / "sam2_ros" / "engine" / "streaming_tracker.py").is_file()
    for name in ("sam2_ros_demo.yaml", "sam2_ros_demo.pt"):  # the demo model ships with it
        assert (target / "sam2_ros" / "models" / name).is_file(), name
    assert not (target / "sam2_ros" / "msg").exists(), "generated interfaces come from colcon"
    assert (target / "bin" / "sam2_ros").is_file()
    assert (target / "share" / "sam2_ros" / "msg" / "TrackedObject.msg").is_file()
    env = dict(os.environ, PYTHONPATH=str(target), AMENT_PREFIX_PATH=str(target))  # no vision_msgs
    probe = (
        "import sam2_ros.engine.streaming_tracker as m, sam2_ros.bags.bag_io as b; "
        "print(m.__file__); print(b.find_msg_dir()); print(b.find_vision_msg_dir()); "
        "print(b.rosbags_vision_types().Detection3DArray.__msgtype__)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert run.returncode == 0, run.stderr
    module_file, msg_dir, vision_dir, vision_type = run.stdout.split()
    assert module_file.startswith(str(target))
    assert (Path(msg_dir) / "TrackedObjectArray.msg").is_file()
    # vision_msgs' texts ship as package data: bags with detections without ROS
    assert vision_dir.startswith(str(target)) and vision_type == "vision_msgs/msg/Detection3DArray"
    help_run = subprocess.run(
        [sys.executable, str(target / "bin" / "sam2_ros"), "--help"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert help_run.returncode == 0 and "replay" in help_run.stdout, help_run.stderr


@pytest.mark.parametrize("module, says", [
    ("ray", "pip install 'sam2_ros[fleet]'"), ("tensordict", "pip install 'sam2_ros[train]'"),
    ("sam2", "--no-build-isolation --no-deps sam2==1.1.0"), ("sam2_ros.msg", "ROS 2"),
    ("vision_msgs.msg", "ROS 2"), ("matplotlib.pyplot", "pip install matplotlib"),
])
def test_a_missing_module_is_named_with_how_to_install_it(module: str, says: str) -> None:
    from sam2_ros.cli.main import missing_module

    line = missing_module(ModuleNotFoundError(f"No module named '{module}'", name=module))
    assert f"'{module}' is not installed" in line and says in line and "\n" not in line


def test_license_file_is_the_license_the_package_declares() -> None:
    """package.xml and setup.py say Apache-2.0; the repository carries that license's text."""
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it
    assert "<license>Apache-2.0</license>" in (ROOT / "package.xml").read_text()
    assert 'license="Apache-2.0"' in (ROOT / "setup.py").read_text()
