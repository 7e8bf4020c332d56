"""``tracker_lifecycle_node``: the sam2_tracker as a managed (lifecycle) node.

Same name, topics, services and parameters as the plain node, in ROS 2's managed states:
configure loads the model (a bad model or checkpoint fails the transition, its log line
says why), activate subscribes and tracks, deactivate stops tracking (the services answer
that the node is inactive), cleanup releases the model and its memory (cycles do not
grow it: docs/benchmarks.md, lifecycle cycles), shutdown exits.
"""

from __future__ import annotations

from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn

from sam2_ros.engine.hardware.heap import limit_arenas
from sam2_ros.names import NODE_NAME
from sam2_ros.ros.parameters import declare_parameters
from sam2_ros.ros.tracker_node import spin_until_signal
from sam2_ros.ros.tracker_shell import TrackerShell

#: malloc arenas of the managed node's process: the worker and the camera thread, each
#: started again at every activation, share the one heap with the executor's threads (with
#: two arenas cycles still crept; docs/benchmarks.md, lifecycle cycles).
LIFECYCLE_MALLOC_ARENAS = 1


class TrackerLifecycleNode(LifecycleNode):
    """Parameters are declared at once; everything else follows the transitions."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self)
        self.shell = TrackerShell(self, self.params)
        self.shell.open()  # services answer "not configured" until configured and active

    @property
    def tracker(self):
        return self.shell.tracker

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.shell.load()
        except Exception as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.shell.unload()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.shell.start()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.shell.stop()
        self.get_logger().info("inactive: not tracking; services answer that the node is inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.shell.unload()
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.shell.stop()
        self.shell.unload()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.shell.stop()
        self.shell.unload()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self.shell.teardown()
        super().destroy_node()


def main(args=None) -> int:
    # Before any thread starts: each activation's new threads would otherwise take new
    # malloc arenas and resident memory would grow with every cycle (sam2_ros.engine.hardware.heap).
    limit_arenas(LIFECYCLE_MALLOC_ARENAS)
    return spin_until_signal(TrackerLifecycleNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
