"""The ``sam2_tracker`` node: camera frames in, SAM 2 masks, objects, overlay, markers out.

The plain node loads the model and starts tracking at once; ``lifecycle_node`` is the
managed variant. Both are thin: everything they do is in ``tracker_shell``.
SIGINT and SIGTERM end the node in order: the frame in progress finishes (bounded by the
``shutdown_timeout`` parameter), then subscriptions, services and publishers go, and the
process exits 0.
"""

from __future__ import annotations

import signal

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from sam2_ros.names import NODE_NAME
from sam2_ros.ros.parameters import declare_parameters
from sam2_ros.ros.services import OrderedExecutor
from sam2_ros.ros.tracker_shell import TrackerShell


class TrackerNode(Node):
    """Loads the model and tracks from the start."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self)
        self.shell = TrackerShell(self, self.params)
        self.shell.load()
        self.shell.open()
        self.shell.start()

    @property
    def tracker(self):
        return self.shell.tracker

    def destroy_node(self) -> None:
        self.shell.teardown()
        super().destroy_node()


def spin_until_signal(make_node, args=None) -> int:
    """Run a node until SIGINT/SIGTERM; tear it down in order; 0 on a clean stop, 1 when
    the node cannot start (its log says why)."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = {"requested": False}
    executor = OrderedExecutor(num_threads=4)  # reset and remove in the order sent

    def on_signal(signum, _frame) -> None:
        stop["requested"] = True  # the spin loop below sees it within 0.1 s

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    node = None
    code = 0
    try:
        node = make_node()
        executor.add_node(node)
        while rclpy.ok() and not stop["requested"]:
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a bad parameter, model or checkpoint: say why and exit 1
        logger = node.get_logger() if node is not None else rclpy.logging.get_logger(NODE_NAME)
        logger.fatal(f"{NODE_NAME} cannot run: {exc}")
        code = 1
    finally:
        if node is not None:
            node.get_logger().info("shutting down: finishing the frame in progress")
            node.destroy_node()
        executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown()
        # Torn down: a second SIGINT (launch and the terminal both send one) must not kill
        # the interpreter's exit, where Python puts the default handler back.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def main(args=None) -> int:
    return spin_until_signal(TrackerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
