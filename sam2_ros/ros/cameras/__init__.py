"""One camera of the tracker node: its topics, services, session and statistics."""
