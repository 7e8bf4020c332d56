"""rosbag2 reading and writing without a ROS installation.

The offline tools (synthetic bag generation, tracking a recorded bag,
evaluation) must run in plain Python environments such as CI or a GPU box with
no ROS, so they use the pure-Python ``rosbags`` library instead of rclpy /
rosbag2_py.  Bags written here are ordinary rosbag2 bags (sqlite3 or mcap, CDR)
that ``ros2 bag play`` and ``rclpy.serialization`` read.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from sam2_ros.evaluation.synthetic_scene import SceneConfig, camera_intrinsics, render_scene

if TYPE_CHECKING:
    from sam2_ros.evaluation.synthetic_detector import DetectorConfig
    from sam2_ros.messages import MessageTypes
    from sam2_ros.vision_messages import VisionTypes

FRAME_ID = "camera_optical_frame"
IMAGE_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
CAMERA_INFO_TOPIC = "/camera/camera_info"
DEPTH_TOPIC = "/camera/depth/image_raw"
GT_LABELS_TOPIC = "/ground_truth/labels"
DETECTIONS_TOPIC = "/detections"

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TRACKED_OBJECT_TYPE = "sam2_ros/msg/TrackedObject"
TRACKED_OBJECT_ARRAY_TYPE = "sam2_ros/msg/TrackedObjectArray"
DETECTION_ARRAY_TYPE = "vision_msgs/msg/Detection2DArray"

_CUSTOM_MSGS = ("TrackedObject", "TrackedObjectArray")
_STORAGES = ("sqlite3", "mcap")


class BagError(Exception):
    """A bag is missing, unreadable or not what we expected; the message is one line."""


# --------------------------------------------------------------------------- typestore


def find_msg_dir() -> Path:
    """Directory holding this package's ``.msg`` files.

    The installed share directory (found through AMENT_PREFIX_PATH, as ROS
    tools do) wins so an installed package uses its own definitions; the source
    tree's ``msg/`` is the fallback for running from a checkout without colcon.
    """
    candidates: list[Path] = []
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "sam2_ros" / "msg")
    candidates.append(Path(sys.prefix) / "share" / "sam2_ros" / "msg")  # pip install .
    candidates.append(Path(__file__).resolve().parents[2] / "msg")
    for cand in candidates:
        if all((cand / f"{name}.msg").is_file() for name in _CUSTOM_MSGS):
            return cand
    looked = ", ".join(str(c) for c in candidates)
    raise BagError(f"cannot find sam2_ros .msg definitions (looked in: {looked})")


def find_vision_msg_dir() -> Path:
    """Directory of vision_msgs' ``.msg`` files: an installed vision_msgs (a ROS 2 install's,
    or the stand-in tools/bootstrap.sh builds) wins; else the texts this package ships
    (vision_msgs 4.x's public messages in this project's words), so bags with detections
    are written and read without ROS."""
    candidates = [Path(prefix) / "share" / "vision_msgs" / "msg"
                  for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
                  if prefix]
    found = next((c for c in candidates if (c / "Detection2DArray.msg").is_file()), None)
    return found or Path(__file__).resolve().parents[1] / "interfaces" / "vision_msgs" / "msg"


@functools.lru_cache(maxsize=1)
def get_typestore() -> Any:
    """Jazzy standard types plus sam2_ros' messages and vision_msgs', built once per
    process."""
    from rosbags.typesys import Stores, get_types_from_msg
    from rosbags.typesys import get_typestore as _rosbags_typestore

    store = _rosbags_typestore(Stores.ROS2_JAZZY)
    msg_dir = find_msg_dir()
    types: dict[str, Any] = {}
    for name in _CUSTOM_MSGS:
        text = (msg_dir / f"{name}.msg").read_text(encoding="utf-8")
        types.update(get_types_from_msg(text, f"sam2_ros/msg/{name}"))
    for path in sorted(find_vision_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"),
                                        f"vision_msgs/msg/{path.stem}"))
    store.register(types)
    return store


def _ensure_types(store: Any, connections: Iterable[Any]) -> None:
    """Register message types a bag brings along but the typestore lacks.

    Lets us read bags with third-party messages, as long as the bag stores
    their definitions (rosbag2 does since Iron).
    """
    from rosbags.typesys import get_types_from_msg

    for conn in connections:
        if conn.msgtype in store.fielddefs:
            continue
        msgdef = getattr(conn.msgdef, "data", "")
        if not msgdef:
            raise BagError(f"topic {conn.topic}: unknown type {conn.msgtype} and the bag has "
                           "no definition for it")
        try:
            store.register(get_types_from_msg(msgdef, conn.msgtype))
        except Exception as err:
            raise BagError(f"topic {conn.topic}: cannot register type {conn.msgtype}: "
                           f"{_one_line(err)}") from err


# --------------------------------------------------------------------------- messages


def make_header(stamp_ns: int, frame_id: str = FRAME_ID) -> Any:
    """std_msgs/Header (rosbags) with the given stamp and frame."""
    from sam2_ros.messages import build_header

    return build_header(rosbags_message_types(), stamp_ns, frame_id)


def numpy_to_image(array: np.ndarray, encoding: str, stamp_ns: int,
                   frame_id: str = FRAME_ID) -> Any:
    """sensor_msgs/Image (rosbags) from an array already laid out as ``encoding`` says."""
    from sam2_ros.messages import build_image

    return build_image(rosbags_message_types(), make_header(stamp_ns, frame_id), array, encoding)


def make_camera_info(cfg: SceneConfig, stamp_ns: int, frame_id: str = FRAME_ID) -> Any:
    """sensor_msgs/CameraInfo for the synthetic pinhole camera (no distortion)."""
    fx, fy, cx, cy = camera_intrinsics(cfg)
    store = get_typestore()
    roi = store.types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return store.types[CAMERA_INFO_TYPE](
        header=make_header(stamp_ns, frame_id), height=cfg.height, width=cfg.width,
        distortion_model="plumb_bob", d=np.zeros(5, dtype=np.float64),
        k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], dtype=np.float64),
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], dtype=np.float64),
        binning_x=0, binning_y=0, roi=roi,
    )


# --------------------------------------------------------------------------- writing


class BagWriter:
    """Context manager writing rosbags message objects to a new bag.

    Topics are declared up front (or with ``add_topic``) so a typo in a topic
    name fails loudly instead of creating a stray topic.  If the body raises,
    the bag is still closed properly: for a tracker run that crashes or is
    interrupted, the frames done so far stay readable.
    """

    def __init__(self, path: str | Path, topics: Mapping[str, str] | None = None,
                 storage: str = "sqlite3") -> None:
        self.path = Path(path)
        if storage not in _STORAGES:
            raise ValueError(f"storage must be one of {_STORAGES}, got {storage!r}")
        if self.path.exists():
            raise FileExistsError(f"output bag {self.path} already exists; remove it or "
                                  "choose another path")
        self.storage = storage
        self._initial_topics = dict(topics or {})
        self._writer: Any = None
        self._conns: dict[str, tuple[Any, str]] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        self._writer.open()
        for topic, msgtype in self._initial_topics.items():
            self.add_topic(topic, msgtype)
        return self

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare ``topic`` carrying ``msgtype`` (e.g. ``sensor_msgs/msg/Image``)."""
        if self._writer is None:
            raise RuntimeError("BagWriter is not open; use it as a context manager")
        if topic in self._conns:
            if self._conns[topic][1] != msgtype:
                raise ValueError(f"topic {topic} already declared as {self._conns[topic][1]}")
            return
        store = get_typestore()
        if msgtype not in store.fielddefs:
            raise ValueError(f"unknown message type {msgtype!r}")
        conn = self._writer.add_connection(topic, msgtype, typestore=store)
        self._conns[topic] = (conn, msgtype)
        self.counts[topic] = 0

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialize ``msg`` (a rosbags dataclass) to CDR and store it at ``stamp_ns``."""
        if topic not in self._conns:
            raise KeyError(f"topic {topic} was not declared; declared: {sorted(self._conns)}")
        conn, msgtype = self._conns[topic]
        data = get_typestore().serialize_cdr(msg, msgtype)
        self._writer.write(conn, int(stamp_ns), data)
        self.counts[topic] += 1

    def write_raw(self, topic: str, stamp_ns: int, data: bytes) -> None:
        """Store an already CDR-serialized message (e.g. one recorded from DDS)."""
        if topic not in self._conns:
            raise KeyError(f"topic {topic} was not declared; declared: {sorted(self._conns)}")
        self._writer.write(self._conns[topic][0], int(stamp_ns), bytes(data))
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml); safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _scene_topics(cfg: SceneConfig, compressed: bool, with_gt: bool) -> dict[str, str]:
    """Topic -> type of a scene bag's camera topics (detections are added apart)."""
    topics = {CAMERA_INFO_TOPIC: CAMERA_INFO_TYPE}
    topics[COMPRESSED_TOPIC if compressed else IMAGE_TOPIC] = (
        COMPRESSED_TYPE if compressed else IMAGE_TYPE)
    if cfg.with_depth:
        topics[DEPTH_TOPIC] = IMAGE_TYPE
    if with_gt:
        topics[GT_LABELS_TOPIC] = IMAGE_TYPE
    return topics


def _scene_detections(cfg: SceneConfig, detector: DetectorConfig,
                      topics: dict[str, str]) -> tuple[VisionTypes, dict[int, list]]:
    """The synthetic detector's messages by the frame index they are published after; adds
    the detections topic to ``topics``."""
    from sam2_ros.evaluation.synthetic_detector import synthetic_detections

    vision = rosbags_vision_types()
    topics[DETECTIONS_TOPIC] = DETECTION_ARRAY_TYPE
    pending: dict[int, list] = {}
    for msg in synthetic_detections(render_scene(cfg), detector):
        pending.setdefault(msg.publish_after, []).append(msg)
    return vision, pending


def _write_camera_image(bag: BagWriter, store, frame, stamp: int, image_encoding: str,
                        compressed: bool) -> None:
    """One frame's colour image, raw in ``image_encoding`` or as a jpeg."""
    import cv2

    if not compressed:
        pixels = frame.rgb if image_encoding == "rgb8" else frame.rgb[..., ::-1]
        bag.write(IMAGE_TOPIC, stamp, numpy_to_image(pixels, image_encoding, stamp))
        return
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError("jpeg encoding failed")
    msg = store.types[COMPRESSED_TYPE](
        header=make_header(stamp),
        format=f"{image_encoding}; jpeg compressed bgr8",
        data=np.asarray(jpg, dtype=np.uint8).reshape(-1))
    bag.write(COMPRESSED_TOPIC, stamp, msg)


def write_scene_bag(path: str | Path, cfg: SceneConfig, storage: str = "sqlite3",
                    image_encoding: str = "rgb8", compressed: bool = False,
                    with_gt: bool = True, progress: bool = True,
                    detector: DetectorConfig | None = None) -> Path:
    """Render ``cfg`` into a camera bag, like a recording from an RGB-D camera.

    Topics: colour image (raw or jpeg), camera info, 16UC1 depth in millimetres
    (the usual RGB-D driver format) when ``cfg.with_depth``, and the 16UC1
    ground-truth label image when ``with_gt`` (for evaluating trackers), and with
    ``detector`` the synthetic detector's vision_msgs/Detection2DArray messages on
    /detections (stamped with the frame they saw, recorded when published).  A
    failed write removes the partial bag, which would be useless anyway.
    """
    from tqdm import tqdm

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"output bag {path} already exists; remove it or choose "
                              "another path")
    if image_encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"image_encoding must be 'rgb8' or 'bgr8', got {image_encoding!r}")
    cfg.validate()
    topics = _scene_topics(cfg, compressed, with_gt)
    store = get_typestore()
    vision, pending = (None, {}) if detector is None else _scene_detections(cfg, detector,
                                                                            topics)
    try:
        with BagWriter(path, topics, storage=storage) as bag, tqdm(
            total=cfg.num_frames, desc=f"writing {path.name}", unit="frame",
            disable=None if progress else True,  # None: only on a terminal
        ) as bar:
            for frame in render_scene(cfg):
                stamp = frame.stamp_ns
                bag.write(CAMERA_INFO_TOPIC, stamp, make_camera_info(cfg, stamp))
                _write_camera_image(bag, store, frame, stamp, image_encoding, compressed)
                if frame.depth_m is not None:
                    mm = np.clip(np.round(frame.depth_m * 1000.0), 0, 65535).astype(np.uint16)
                    bag.write(DEPTH_TOPIC, stamp, numpy_to_image(mm, "16UC1", stamp))
                if with_gt:
                    bag.write(GT_LABELS_TOPIC, stamp, numpy_to_image(frame.labels, "16UC1", stamp))
                for det in pending.get(frame.index, []):  # recorded after the frame it names
                    bag.write(DETECTIONS_TOPIC, stamp + 1,
                              build_detection_input(vision, det.stamp_ns, det.detections))
                bar.update(1)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def build_detection_input(types: VisionTypes, stamp_ns: int, detections) -> Any:
    """A detector's Detection2DArray (rosbags) of ``Detection``s, stamped ``stamp_ns``."""
    from sam2_ros.vision_messages import build_detector_array

    return build_detector_array(types, make_header(stamp_ns), detections)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagInfo:
    """Summary of a bag, enough to decide how to process it."""

    path: Path
    storage: str
    message_count: int
    start_ns: int
    end_ns: int
    topics: dict[str, TopicInfo] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Time between the first and last message, in seconds."""
        return max(0, self.end_ns - self.start_ns) / 1e9


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _storage_of(path: Path) -> str:
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for f in files:
        if ".mcap" in f.suffixes:
            return "mcap"
        if ".db3" in f.suffixes:
            return "sqlite3"
    return "unknown"


def _open_reader(path: str | Path) -> Any:
    """Open a rosbags Reader, turning every failure into a one-line BagError."""
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(f"not a rosbag2 bag: {path} has no metadata.yaml")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as err:
        raise BagError(f"cannot read bag {path}: {_one_line(err)}") from err
    return reader


def inspect_bag(path: str | Path) -> BagInfo:
    """Topics, types, counts and time span of a bag.

    Reads the first message too, because metadata alone can look fine while
    the storage file is truncated or garbage; we want that reported here, not
    halfway through a long processing run.
    """
    path = Path(path)
    reader = _open_reader(path)
    try:
        topics = {name: TopicInfo(name, info.msgtype or "", int(info.msgcount))
                  for name, info in reader.topics.items()}
        count = int(reader.message_count)
        start = int(reader.start_time) if count else 0
        end = int(reader.end_time) - 1 if count else 0  # rosbags' end_time is exclusive
        if count:
            next(iter(reader.messages()), None)
    except Exception as err:
        raise BagError(f"cannot read bag {path}: {_one_line(err)}") from err
    finally:
        reader.close()
    return BagInfo(path, _storage_of(path), count, start, end, topics)


def iter_messages(path: str | Path, topics: Iterable[str] | None = None
                  ) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(topic, bag_stamp_ns, message)`` in time order, deserialized.

    ``topics`` None means all topics.  Asking for a topic the bag lacks is an
    error rather than an empty stream, since that is almost always a typo or
    the wrong bag.
    """
    store = get_typestore()
    for topic, stamp, msgtype, raw in iter_raw_messages(path, topics):
        try:
            msg = store.deserialize_cdr(raw, msgtype)
        except Exception as err:
            raise BagError(f"cannot read bag {path}: {_one_line(err)}") from err
        yield topic, stamp, msg


def iter_raw_messages(path: str | Path, topics: Iterable[str] | None = None
                      ) -> Iterator[tuple[str, int, str, bytes]]:
    """Yield ``(topic, bag_stamp_ns, msgtype, cdr_bytes)`` in time order (see iter_messages)."""
    path = Path(path)
    reader = _open_reader(path)
    try:
        wanted = None if topics is None else list(dict.fromkeys(topics))
        available = {c.topic for c in reader.connections}
        if wanted is not None:
            missing = [t for t in wanted if t not in available]
            if missing:
                raise BagError(f"bag {path} has no topic(s) {missing}; it has "
                               f"{sorted(available)}")
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not conns:  # rosbags treats an empty filter as "everything"
            return
        _ensure_types(get_typestore(), conns)
        try:
            for conn, stamp, raw in reader.messages(connections=conns):
                yield conn.topic, int(stamp), conn.msgtype, bytes(raw)
        except BagError:
            raise
        except Exception as err:
            raise BagError(f"cannot read bag {path}: {_one_line(err)}") from err
    finally:
        reader.close()


def rosbags_vision_types() -> VisionTypes:
    """The rosbags vision_msgs classes (to write detections into bags)."""
    from sam2_ros.vision_messages import VisionTypes

    types = get_typestore().types
    v, g = "vision_msgs/msg/", "geometry_msgs/msg/"
    return VisionTypes(
        *(types[v + n] for n in ("Detection2DArray", "Detection2D", "Detection3DArray",
                                 "Detection3D", "ObjectHypothesisWithPose", "ObjectHypothesis",
                                 "BoundingBox2D", "BoundingBox3D", "Pose2D", "Point2D")),
        *(types[g + n] for n in ("PoseWithCovariance", "Pose", "Point", "Quaternion",
                                 "Vector3")),
    )


def rosbags_message_types() -> MessageTypes:
    """The rosbags classes message_building fills to write the node's topics into a bag."""
    from sam2_ros.messages import MessageTypes

    types = get_typestore().types
    return MessageTypes(
        Time=types["builtin_interfaces/msg/Time"],
        Header=types["std_msgs/msg/Header"],
        RegionOfInterest=types["sensor_msgs/msg/RegionOfInterest"],
        Image=types[IMAGE_TYPE],
        Point=types["geometry_msgs/msg/Point"],
        TrackedObject=types[TRACKED_OBJECT_TYPE],
        TrackedObjectArray=types[TRACKED_OBJECT_ARRAY_TYPE],
    )
