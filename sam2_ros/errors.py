"""Errors the engine raises for bad input, each a ValueError with a message a person can act on.

One hierarchy so that callers (the ROS node's services, the CLI) can turn any of them into
a failed response or a one-line message without catching unrelated bugs.
"""


class TrackerError(ValueError):
    """Base of every input error of the streaming tracker; its state is unchanged."""


class FrameError(TrackerError):
    """A frame that is not an HxWx3 RGB image the model can take."""


class PromptError(TrackerError):
    """A prompt (points, labels, box or mask) that cannot be applied."""


class UnknownObjectError(TrackerError):
    """An object id the tracker does not know."""


class StampError(TrackerError):
    """A frame stamp that is unknown, too old for the frame ring, or out of order."""


class NoFrameError(TrackerError):
    """A prompt before any frame was tracked."""


class TooManyObjectsError(TrackerError):
    """Adding an object past max_objects."""


class ModelConfigError(ValueError):
    """A model name, config file, device or precision that cannot be used."""


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable or for another model."""
