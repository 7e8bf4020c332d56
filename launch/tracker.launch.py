"""Start the sam2_tracker node (and optionally RViz2).

    ros2 launch sam2_ros tracker.launch.py image_topic:=/camera/color/image_raw \\
        checkpoint:=/path/to/sam2.1_hiera_tiny.pt

Several instances can run side by side with different ``namespace`` values: every topic
and service of the node is relative to it (``<namespace>/sam2_tracker/masks`` ...).
model, checkpoint, device and use_depth override the parameters file (``params_file``)
when given; left empty, the file's values are used (its checkpoint is empty: random
weights, for tests and demos only).
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

ARGUMENTS = (
    ("model", "", "SAM 2 model name or config .yaml path (empty: params_file's)"),
    ("checkpoint", "", "SAM 2 checkpoint .pt (empty: params_file's; none = random weights)"),
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
    ("namespace", "", "Namespace of the node, so several instances do not collide"),
    ("params_file", None, "Parameters YAML (default: share/sam2_ros/config/tracker.yaml)"),
    ("use_rviz", "false", "Also open RViz2 with share/sam2_ros/config/tracker.rviz"),
)
OVERRIDABLE = ("model", "checkpoint", "device", "use_depth")


def _tracker(context):
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    overrides = {}
    for name in OVERRIDABLE:
        text = value(name).strip()
        if text:
            overrides[name] = text.lower() in ("true", "1", "yes") if name == "use_depth" else text
    image_topic = value("image_topic")
    return [
        Node(
            package="sam2_ros",
            executable="tracker_node",
            name="sam2_tracker",
            namespace=value("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[value("params_file"), overrides],
            remappings=[
                ("image", image_topic),
                ("image/compressed", image_topic.rstrip("/") + "/compressed"),
                ("camera_info", value("camera_info_topic")),
                ("depth", value("depth_topic")),
            ],
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
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="sam2_rviz",
        arguments=["-d", PathJoinSubstitution([share, "config", "tracker.rviz"])],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
        output="screen",
    )
    return LaunchDescription([*actions, OpaqueFunction(function=_tracker), rviz])
