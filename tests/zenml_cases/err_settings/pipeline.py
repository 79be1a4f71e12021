"""Docker settings given as a plain dict that ZenML's DockerSettings model rejects."""

from zenml import pipeline, step


@step(settings={"docker": {"apt_packages": "git"}})
def only() -> None:
    pass


@pipeline(settings={"docker": {"requirements": ["numpy==2.1.1"]}})
def typo() -> None:
    only()
