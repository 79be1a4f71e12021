from zenml import pipeline, step


@step
def scale(factor: float) -> float:
    return factor


@pipeline
def needs_parameters(factor: float) -> None:
    scale(factor)
