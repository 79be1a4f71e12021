"""A src/ layout: the pipeline imports its own package, which is not on the import path unless installed."""
from zenml import pipeline

from featurepipes.steps import load


@pipeline
def training() -> None:
    load()
