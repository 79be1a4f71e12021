import missing_dependency_xyz  # noqa: F401
