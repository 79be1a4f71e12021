"""Settings ZenML accepts but dockwright refuses: the import stops, and writes nothing."""

from zenml import pipeline, step
from zenml.config import DockerSettings


@step
def only() -> None:
    pass


@pipeline(settings={"docker": DockerSettings(environment={"banner": "two\nlines"},
                                             requirements=["torch @ https://user:secret@example.com/torch.whl"],
                                             install_stack_requirements=False)})
def refused() -> None:
    only()
