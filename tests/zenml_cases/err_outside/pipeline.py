from zenml import pipeline, step
from zenml.config import DockerSettings


@step
def only() -> None:
    pass


@pipeline(settings={"docker": DockerSettings(dockerfile="../elsewhere/Dockerfile")})
def outside() -> None:
    only()
