"""Pipelines in a package, imported as a module: `dockwright import zenml pipelines.batch:scoring`."""

from zenml import pipeline, step
from zenml.config import DockerSettings

SETTINGS = DockerSettings(parent_image="python:3.12-slim", requirements=["zenml==0.98.0", "polars==1.9.0"],
                          install_stack_requirements=False, python_package_installer="pip")


@step
def fetch() -> int:
    return 1


@step(settings={"docker": DockerSettings(apt_packages=["curl"], environment={"HTTP_TIMEOUT": 30})})
def publish(rows: int) -> None:
    pass


@pipeline(settings={"docker": SETTINGS})
def scoring() -> None:
    publish(fetch())


@pipeline(settings={"docker": SETTINGS})
def backfill() -> None:
    fetch()
