"""Steps, but no pipeline."""

from zenml import step


@step
def lonely() -> None:
    pass
