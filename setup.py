"""pip install . -> the ROS-free core of sam2_ros and its command-line tools.

For people who do not build with colcon: the streaming SAM 2 engine, image/mask/depth
utilities, bag replay and the synthetic scene. The ROS 2 node and the generated
sam2_ros.msg / sam2_ros.srv come from the colcon (ament_cmake) build instead.

Install torch and Meta's SAM 2 code first, as tools/bootstrap.sh does (a plain
`pip install sam2` builds in isolation and pulls a CUDA torch and torchvision).
"""

from glob import glob

from setuptools import find_packages, setup

setup(
    name="sam2_ros",
    version="0.1.0",
    description="Streaming SAM 2 video object tracking for robots (ROS-free core and tools)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sam2_ros", "sam2_ros.*"]),
    # The demo model's config and bundled weights (sam2_ros_demo) live in the package.
    package_data={"sam2_ros": ["models/*.yaml", "models/*.pt"]},
    data_files=[("share/sam2_ros/msg", sorted(glob("msg/*.msg")))],
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.7",
        "opencv-python-headless>=4.8",
        "pillow>=9",
        "pyyaml>=6",
        "tqdm>=4.66",
        "rosbags>=0.10",
        "hydra-core>=1.3",
        "torch>=2.5.1",
        "sam2>=1.1.0",
    ],
    entry_points={
        "console_scripts": [
            "sam2_ros = sam2_ros.cli.main:main",
            "tracker_node = sam2_ros.ros.tracker_node:main",
            "tracker_lifecycle_node = sam2_ros.ros.lifecycle_node:main",
        ]
    },
)
