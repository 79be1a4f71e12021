"""Run from the repository root (as ZenML resolves paths: from the working directory), imported into app/."""

from zenml import pipeline, step
from zenml.config import DockerSettings


@step
def only() -> None:
    pass


@pipeline(settings={"docker": DockerSettings(dockerfile="app/docker/Dockerfile", build_context_root="app",
                                             requirements=["scipy==1.14.1"], install_stack_requirements=False)})
def nested() -> None:
    only()
