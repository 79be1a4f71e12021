"""A project whose generated/ already holds a file dockwright did not write."""

from zenml import pipeline, step
from zenml.config import DockerSettings


@step
def only() -> None:
    pass


@pipeline(settings={"docker": DockerSettings(requirements=["zenml==0.98.0"], install_stack_requirements=False)})
def blocked() -> None:
    only()
