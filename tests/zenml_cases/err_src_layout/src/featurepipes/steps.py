from zenml import step


@step
def load() -> int:
    return 1
