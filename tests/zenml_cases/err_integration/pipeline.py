from zenml import pipeline, step
from zenml.config import DockerSettings


@step
def only() -> None:
    pass


@pipeline(settings={"docker": DockerSettings(required_integrations=["no_such_integration"])})
def broken() -> None:
    only()
