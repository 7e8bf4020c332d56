"""Objects from where robots get them, and standard outputs: a detector's vision_msgs
detections and image-viewer clicks in (``prompt_topics``), vision_msgs out
(``vision_outputs``). Wired into the node by ``ros.tracker_shell``."""
