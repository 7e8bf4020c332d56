"""`sam2_ros label`: many bags labelled by a pool of workers on Ray (embedded or a cluster).

Only ``ray_pool`` imports Ray, and only when called; the engine and the node never do.
"""
