"""dockwright: compile a project's environments, written in YAML, into reviewable Dockerfiles."""
