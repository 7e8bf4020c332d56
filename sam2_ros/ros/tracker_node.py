"""Placeholder removed by the node issue."""
