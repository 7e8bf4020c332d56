"""pip install . -> the ROS-free core of sam2_ros and its command-line tools.

For people who do not build with colcon: the streaming SAM 2 engine, image/mask/depth
utilities, bag replay and the synthetic scene. The ROS 2 node and the generated
sam2_ros.msg / sam2_ros.srv come from the colcon (ament_cmake) build instead.

Install torch and Meta's SAM 2 code first, as README.md says: a plain `pip install sam2`
builds in isolation and pulls a CUDA torch and torchvision. sam2 is therefore not listed
below either: pip would then resolve its torchvision requirement and replace the CPU torch.
Extras: `train` (Meta's training package's needs, requirements/train.txt), `fleet` (Ray,
for `sam2_ros label`).
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup


def _pins(path: str) -> list[str]:
    """The requirement lines of a requirements file (comments and blanks left out)."""
    text = (Path(__file__).parent / path).read_text()
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


setup(
    name="sam2_ros",
    version="0.1.0",
    description="Streaming SAM 2 video object tracking for robots (ROS-free core and tools)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sam2_ros", "sam2_ros.*"]),
    # The demo model's config and bundled weights (sam2_ros_demo) live in the package, and
    # vision_msgs' message texts, to read and write bags with detections without ROS.
    package_data={"sam2_ros": ["models/*.yaml", "models/*.pt",
                               "interfaces/vision_msgs/msg/*.msg"]},
    data_files=[("share/sam2_ros/msg", sorted(glob("msg/*.msg")))],
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.7",
        "opencv-python-headless>=4.8",
        "pillow>=9",
        "pyyaml>=6",
        "tqdm>=4.66",
        "rosbags>=0.10",
        "matplotlib>=3.7",  # run summaries' and training reports' plots
        "imageio-ffmpeg>=0.4.9",  # H.264 overlay videos (OpenCV's MPEG-4 without it)
        "hydra-core>=1.3",  # with iopath: what Meta's sam2 imports (installed --no-deps)
        "iopath>=0.1.10",
        "torch>=2.5.1",
    ],
    # train: what Meta's training package imports; fleet: Ray core for `sam2_ros label`.
    extras_require={"train": _pins("requirements/train.txt"), "fleet": ["ray==2.60.0"]},
    entry_points={
        "console_scripts": [
            "sam2_ros = sam2_ros.cli.main:main",
            "tracker_node = sam2_ros.ros.tracker_node:main",
            "tracker_lifecycle_node = sam2_ros.ros.lifecycle_node:main",
        ]
    },
)
