"""A pipeline built on its own Dockerfile, with a requirements file, pip and a user."""

from zenml import pipeline, step
from zenml.config import DockerSettings
from zenml.config.docker_settings import DockerBuildConfig, DockerBuildOptions


@step
def ingest() -> str:
    return "ok"


@step
def report(text: str) -> None:
    print(text)


@pipeline(settings={"docker": DockerSettings(
    dockerfile="docker/Dockerfile",
    build_context_root=".",
    requirements="requirements.txt",
    python_package_installer="pip",
    python_package_installer_args={"no-compile": None, "timeout": 100},
    user="zenml",
    build_config=DockerBuildConfig(build_options=DockerBuildOptions(build_args={"TZ": "UTC"},
                                                                    labels={"team": "data"})),
    install_stack_requirements=False,
)})
def nightly_report() -> None:
    report(ingest())


not_a_pipeline = 42
