"""Two pipelines in one file, one without any settings; names that dockwright spells otherwise."""

from zenml import pipeline, step
from zenml.config import DockerSettings


@step(name="Load Raw Data")
def load() -> int:
    return 1


@step
def clean(rows: int) -> int:
    return rows


@pipeline(name="ETL.Daily")
def etl() -> None:
    clean(load())


@pipeline(settings={"docker": DockerSettings(parent_image="python:3.11-slim", requirements=["zenml==0.98.0"],
                                             user="1000", install_stack_requirements=False)})
def Reporting() -> None:
    load()
    clean(load(id="load-again"))
