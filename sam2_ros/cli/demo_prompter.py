"""The demo prompts the node as a planner would: each ground-truth object once, through
``~/add_prompt``, on a frame the node has processed (named by stamp) where it shows well."""

from __future__ import annotations

import threading

import numpy as np

from sam2_ros.cli.demo_recorder import Recorder

MIN_PROMPT_AREA = 80  # pixels of ground truth an object needs before the demo prompts it
#: This ground-truth object (the designed scene's rectangle) is prompted by its box, the
#: others by a click, so that one run sends both kinds of prompt through ~/add_prompt.
BOX_PROMPTED_GT_ID = 2
SERVICE_WAIT_S = 60.0  # the longest wait for the node's answer to one prompt


class Prompter:
    """Prompts on its own thread while the bag plays; counts what the node accepted."""

    def __init__(self, node, service: str, group, recorder: Recorder) -> None:
        from sam2_ros.srv import AddPrompt

        self.client = node.create_client(AddPrompt, service, callback_group=group)
        self.request_type = AddPrompt
        self.recorder = recorder
        self.sent = self.accepted = 0
        self.gt_ids: dict[int, int] = {}  # object id the node gave -> ground-truth id
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, gt: dict[int, np.ndarray]) -> None:
        """Prompt every object of ``gt`` (stamp -> label image) as frames get processed."""
        self.sent = self.accepted = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(gt,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No more prompts: the bag is played and its last frame answered."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, gt: dict[int, np.ndarray]) -> None:
        """Prompt every object once, on the first processed frame where it shows well."""
        pending = sorted({int(i) for labels in gt.values() for i in np.unique(labels) if i})
        seen: set[int] = set()
        while pending and not self._done.is_set():
            for stamp in self._newly_processed(seen):
                labels = gt.get(stamp)
                if labels is not None:
                    pending = [i for i in pending if not self._prompt(i, labels == i, stamp)]
                if not pending:
                    return

    def _newly_processed(self, seen: set[int]) -> list[int]:
        """Stamps of frames the node published results for since the last call (waits for
        one up to a second); adds them to ``seen``."""
        rec = self.recorder
        with rec.new_frame:
            rec.new_frame.wait_for(
                lambda: set(rec.processed) - seen or self._done.is_set(), timeout=1.0
            )
            fresh = sorted(set(rec.processed) - seen)
        seen.update(fresh)
        return fresh

    def _prompt(self, gt_id: int, mask: np.ndarray, stamp: int) -> bool:
        """Prompt one object on one processed frame, as a planner would, if it shows well
        there; returns whether the node accepted it."""
        if int(mask.sum()) < MIN_PROMPT_AREA:
            return False
        request = prompt_request(self.request_type, gt_id, mask, stamp)
        response = self._call(request)
        self.sent += 1
        if response is None or not response.success:
            why = response.message if response is not None else "no answer"
            print(f"[demo] prompt for {request.label} refused: {why}")
            return False
        self.accepted += 1
        self.gt_ids[response.object_id] = gt_id
        print(
            f"[demo] prompted object {response.object_id} ({request.label}) "
            f"on frame stamp {stamp}: score {response.score:.2f}"
        )
        return True

    def _call(self, request):
        future = self.client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        done.wait(timeout=SERVICE_WAIT_S)
        return future.result() if future.done() else None


def prompt_request(request_type, gt_id: int, mask: np.ndarray, stamp: int):
    """An AddPrompt request for a new object on the frame ``stamp``: a box around the
    ground-truth mask for BOX_PROMPTED_GT_ID, else a click on its most interior point."""
    from geometry_msgs.msg import Point

    from sam2_ros.imaging.masks import interior_point

    request = request_type.Request(object_id=0, label=f"shape{gt_id}")
    request.stamp.sec, request.stamp.nanosec = divmod(stamp, 1_000_000_000)
    if gt_id == BOX_PROMPTED_GT_ID:
        ys, xs = np.nonzero(mask)
        request.use_box = True
        request.box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    else:
        x, y = interior_point(mask)
        request.points = [Point(x=float(x), y=float(y), z=0.0)]
        request.point_labels = [1]
    return request
