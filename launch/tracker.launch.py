"""Start the sam2_tracker node (plain or managed) and optionally RViz2.

    ros2 launch sam2_ros tracker.launch.py image_topic:=/camera/color/image_raw \\
        model:=sam2.1_hiera_t checkpoint:=/path/to/sam2.1_hiera_tiny.pt

Several instances can run side by side with different ``namespace`` values: every topic
and service of the node is relative to it (``<namespace>/sam2_tracker/masks`` ...), and
RViz opens in the same namespace with its topics rewritten to follow. model, checkpoint,
device, use_depth and tracking_mode override the parameters file (``params_file``) when
given; left empty, the file's values are used (the bundled demo model, sam2_ros_demo).
``lifecycle:=true`` starts the managed node (tracker_lifecycle_node) and configures and
activates it at once. A tracker that fails ends the launch with a non-zero status and its
reason. RViz2 is optional: without it, use_rviz logs why and skips.
"""

import os
import re
import tempfile
import threading
import time
from pathlib import Path

from launch.actions import (
    DeclareLaunchArgument,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit, OnProcessIO, OnShutdown
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.ros_adapters import get_ros_node
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState

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
    ("cameras", "", "Cameras served by one node, e.g. \"[front, wrist]\": topics front/image, "
     "~/front/masks ... (remap each camera's inputs: docs/multi_camera.md; empty: one camera)"),
    ("namespace", "", "Namespace of the node (and its RViz), so instances do not collide"),
    ("params_file", None, "Parameters YAML (default: share/sam2_ros/config/tracker.yaml)"),
    ("use_rviz", "false", "Also open RViz2 with share/sam2_ros/config/tracker.rviz"),
    ("use_sim_time", "false", "Use /clock (rosbag play --clock, simulators)"),
    ("lifecycle", "false", "true: the managed node tracker_lifecycle_node, configured and "
     "activated at once"),
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
    cameras = [c.strip() for c in value("cameras").strip().strip("[]").split(",") if c.strip()]
    if cameras:
        overrides["cameras"] = cameras
    image_topic = value("image_topic")
    namespace = value("namespace").strip("/")
    common = {
        "package": "sam2_ros",
        "name": "sam2_tracker",
        "namespace": namespace,
        "output": "screen",
        "emulate_tty": True,
        # On SIGINT the node finishes its frame (shutdown_timeout), releases the model and
        # exits, which can outlast launch's default 5 s before SIGTERM on a busy CPU.
        "sigterm_timeout": "30",
        "parameters": [value("params_file"), overrides],
        "remappings": [
            ("image", image_topic),
            ("image/compressed", image_topic.rstrip("/") + "/compressed"),
            ("camera_info", value("camera_info_topic")),
            ("depth", value("depth_topic")),
        ],
    }
    if _truthy(value("lifecycle")):
        node, actions = _managed(common)
    else:
        node = Node(executable="tracker_node", **common)
        actions = [node]
    actions += _fail_with_the_node(node)
    if _truthy(value("use_rviz")):
        actions += _rviz(namespace, overrides["use_sim_time"])
    return actions


def _managed(common: dict) -> tuple:
    """The lifecycle node and the action that configures and activates it once it is up.

    The same on every launch_ros (``LifecycleNode(autostart=True)`` exists only from
    0.26.7): transitions are asked for as service calls, each asked again when it goes
    unanswered, since DDS can drop a call sent just after discovery on a busy machine.
    """
    node = LifecycleNode(executable="tracker_lifecycle_node", **common)

    def bring_up(context) -> list:
        work = context.asyncio_loop.run_in_executor(None, _drive_to_active, context, node.node_name)
        context.add_completion_future(work)
        return []

    return node, [node, OpaqueFunction(function=bring_up)]


#: A service call unanswered this long is asked again (its request or answer was lost).
ANSWER_WAIT_S = 20.0


def _drive_to_active(context, name: str) -> None:
    """Configure, then activate ``name``, from whatever state it reports; stop at a refusal
    (the node's log says why) or at shutdown."""
    log = get_logger("sam2_ros.lifecycle")
    ros = get_ros_node(context)
    get_state = ros.create_client(GetState, f"{name}/get_state")
    change = ros.create_client(ChangeState, f"{name}/change_state")
    steps = {State.PRIMARY_STATE_UNCONFIGURED: ("configure", Transition.TRANSITION_CONFIGURE),
             State.PRIMARY_STATE_INACTIVE: ("activate", Transition.TRANSITION_ACTIVATE)}
    try:
        while not context.is_shutdown:
            answer = _ask(context, get_state, GetState.Request())
            state = answer.current_state if answer is not None else None
            if state is None or state.id == State.PRIMARY_STATE_UNKNOWN or state.id >= 10:
                time.sleep(0.2)  # lost, or a transition under way: ask again
                continue
            if state.id == State.PRIMARY_STATE_ACTIVE:
                log.info(f"{name} is active")
                return
            if state.id not in steps:
                log.error(f"{name} is {state.label}: not activating it")
                return
            verb, transition = steps[state.id]
            request = ChangeState.Request()
            request.transition.id = transition
            answer = _ask(context, change, request)
            if answer is not None and not answer.success:
                log.error(f"{name} could not {verb}: its log above says why")
                return
    finally:
        ros.destroy_client(get_state)
        ros.destroy_client(change)


def _ask(context, client, request):
    """The answer to one call, or None when none came within ANSWER_WAIT_S or at shutdown."""
    while not client.wait_for_service(timeout_sec=1.0):
        if context.is_shutdown:
            return None
    answered = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _future: answered.set())
    deadline = time.monotonic() + ANSWER_WAIT_S
    while not answered.wait(0.5):
        if context.is_shutdown or time.monotonic() > deadline:
            client.remove_pending_request(future)
            return None
    return future.result()


_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def _fail_with_the_node(node) -> list:
    """End the launch with a non-zero status when the tracker dies before shutdown.

    Without this ``ros2 launch`` exits 0 after a failed start, so a script cannot tell. The
    error names the node's last FATAL/ERROR line (its reason, e.g. an unknown model).
    """
    last = {"error": "", "line": ""}

    def remember(event) -> None:
        for line in event.text.decode(errors="replace").splitlines():
            text = _COLOUR.sub("", line).strip()
            if text:
                last["line"] = text
                if "[FATAL]" in text or "[ERROR]" in text:
                    last["error"] = text

    def on_exit(event, context) -> None:
        if event.returncode == 0 or context.is_shutdown:
            return
        reason = last["error"] or last["line"] or "no output"
        raise RuntimeError(
            f"{event.action.name} exited with code {event.returncode}: {reason}"
        )

    return [
        RegisterEventHandler(
            OnProcessIO(target_action=node, on_stdout=remember, on_stderr=remember)
        ),
        RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit)),
    ]


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
    handle, config = tempfile.mkstemp(prefix="sam2_ros_", suffix=".rviz")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    # The rewritten config lives as long as the launch: removed at shutdown.
    remove = OnShutdown(on_shutdown=lambda _event, _context: Path(config).unlink(missing_ok=True))
    return [
        RegisterEventHandler(remove),
        Node(
            package="rviz2",
            executable="rviz2",
            name="sam2_rviz",
            namespace=namespace,
            arguments=["-d", config],
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
