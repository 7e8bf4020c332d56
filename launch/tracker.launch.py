"""Start the sam2_tracker node (plain or managed) and optionally RViz2.

    ros2 launch sam2_ros tracker.launch.py image_topic:=/camera/color/image_raw \\
        model:=sam2.1_hiera_t checkpoint:=/path/to/sam2.1_hiera_tiny.pt

Several instances can run side by side with different ``namespace`` values: every topic
and service of the node is relative to it (``<namespace>/sam2_tracker/masks`` ...), and
RViz opens in the same namespace with its topics rewritten to follow. model, checkpoint,
device and use_depth override the parameters file (``params_file``) when given; left
empty, the file's values are used (the bundled demo model, sam2_ros_demo).
``lifecycle:=true`` starts the managed node (tracker_lifecycle_node), configured and
activated at once (autostart). RViz2 is optional: without it, use_rviz logs why and skips.
"""

import tempfile

from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = (
    ("model", "", "SAM 2 model name or config .yaml path (empty: params_file's)"),
    ("checkpoint", "", "SAM 2 checkpoint .pt (empty: params_file's)"),
    ("device", "", "Torch device: auto, cpu, cuda, cuda:1 ... (empty: params_file's)"),
    (
        "image_topic",
        "/camera/color/image_raw",
        "Colour image topic (with image_transport compressed, <image_topic>/compressed is used)",
    ),
    (
        "camera_info_topic",
        "/camera/aligned_depth_to_color/camera_info",
        "CameraInfo of the depth image",
    ),
    (
        "depth_topic",
        "/camera/aligned_depth_to_color/image_raw",
        "Depth image registered to the colour image (16UC1 mm or 32FC1 m)",
    ),
    ("use_depth", "", "true: 3D positions and ~/markers from depth (empty: params_file's)"),
    ("tracking_mode", "", "sam2 (Meta's) or motion (keeps identities where look-alikes "
     "cross; empty: params_file's)"),
    ("namespace", "", "Namespace of the node (and its RViz), so instances do not collide"),
    ("params_file", None, "Parameters YAML (default: share/sam2_ros/config/tracker.yaml)"),
    ("use_rviz", "false", "Also open RViz2 with share/sam2_ros/config/tracker.rviz"),
    ("use_sim_time", "false", "Use /clock (rosbag play --clock, simulators)"),
    ("lifecycle", "false", "true: the managed node tracker_lifecycle_node, with autostart"),
)
OVERRIDABLE = ("model", "checkpoint", "device", "use_depth", "tracking_mode")


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes", "on")


def _launch(context):
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    overrides = {"use_sim_time": _truthy(value("use_sim_time"))}
    for name in OVERRIDABLE:
        text = value(name).strip()
        if text:
            overrides[name] = _truthy(text) if name == "use_depth" else text
    image_topic = value("image_topic")
    namespace = value("namespace").strip("/")
    common = {
        "package": "sam2_ros",
        "name": "sam2_tracker",
        "namespace": namespace,
        "output": "screen",
        "emulate_tty": True,
        "parameters": [value("params_file"), overrides],
        "remappings": [
            ("image", image_topic),
            ("image/compressed", image_topic.rstrip("/") + "/compressed"),
            ("camera_info", value("camera_info_topic")),
            ("depth", value("depth_topic")),
        ],
    }
    if _truthy(value("lifecycle")):
        actions = [LifecycleNode(executable="tracker_lifecycle_node", autostart=True, **common)]
    else:
        actions = [Node(executable="tracker_node", **common)]
    if _truthy(value("use_rviz")):
        actions += _rviz(namespace, overrides["use_sim_time"])
    return actions


def _rviz(namespace: str, use_sim_time: bool) -> list:
    """RViz2 in the node's namespace, its topics rewritten to follow; skipped without it."""
    from ament_index_python.packages import (
        PackageNotFoundError,
        get_package_share_directory,
    )

    try:
        get_package_share_directory("rviz2")
    except PackageNotFoundError:
        return [LogInfo(msg="use_rviz: rviz2 is not installed (apt install ros-$ROS_DISTRO-rviz2)"
                            "; starting without it")]
    share = get_package_share_directory("sam2_ros")
    with open(f"{share}/config/tracker.rviz") as source:
        text = source.read()
    prefix = f"/{namespace}" if namespace else ""
    text = text.replace("Value: /sam2_tracker/", f"Value: {prefix}/sam2_tracker/")
    with tempfile.NamedTemporaryFile("w", suffix=".rviz", delete=False) as config:
        config.write(text)
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            name="sam2_rviz",
            namespace=namespace,
            arguments=["-d", config.name],
            parameters=[{"use_sim_time": use_sim_time}],
            output="screen",
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("sam2_ros")
    actions = [
        DeclareLaunchArgument(
            name,
            default_value=(
                PathJoinSubstitution([share, "config", "tracker.yaml"])
                if default is None
                else default
            ),
            description=description,
        )
        for name, default, description in ARGUMENTS
    ]
    return LaunchDescription([*actions, OpaqueFunction(function=_launch)])
