"""Step settings that are valid alone but not merged over the pipeline's, as ZenML merges them."""

from zenml import pipeline, step
from zenml.config import DockerSettings


@step(settings={"docker": DockerSettings(allow_including_files_in_images=False)})
def only() -> None:
    pass


@pipeline(settings={"docker": DockerSettings(local_project_install_command="pip install .")})
def clash() -> None:
    only()
