"""Settings that have no equivalent in dockwright.yaml, each named in a warning."""

from zenml import pipeline, step
from zenml.config import DockerSettings


@step(settings={"docker": DockerSettings(python_package_installer_cache_mount="type=cache,target=/root/.cache/uv",
                                         prevent_build_reuse=True)})
def only(x: int = 1) -> int:
    return x


@step(settings={"docker": DockerSettings(parent_image="registry.example.com/ml/runtime:1.4", skip_build=True)})
def prebuilt(x: int) -> None:
    pass


@pipeline(settings={"docker": DockerSettings(
    parent_image="python:3.11-slim",
    image_tag="nightly",
    target_repository="ml/pipelines",
    replicate_local_python_environment="pip_freeze",
    pyproject_path="pyproject.toml",
    local_project_install_command="pip install -e .",
    allow_download_from_artifact_store=False,
    disable_automatic_requirements_detection=False,
    runtime_environment={"mode": "prod"},
)})
def odd_pipeline() -> None:
    prebuilt(only())
