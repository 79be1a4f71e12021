"""A training pipeline: pipeline-wide settings with an integration, steps with and without their own."""

from zenml import pipeline, step
from zenml.config import DockerSettings

base = DockerSettings(
    requirements=["pandas==2.2.2"],
    required_integrations=["sklearn"],
    apt_packages=["libgomp1"],
    environment={"log_level": "info", "price": "$5", "PIP_DEFAULT_TIMEOUT": "100"},
)


@step
def load_data() -> int:
    return 1


@step(settings={"docker": DockerSettings(requirements=["pandas==2.2.2", "xgboost==2.1.1"],
                                         environment={"OMP_NUM_THREADS": 4})})
def Train_Model(rows: int) -> int:
    return rows


@step(settings={"docker": DockerSettings(parent_image="nvidia/cuda:12.4.1-runtime-ubuntu22.04",
                                         requirements=["torch==2.4.1"])})
def fine_tune(rows: int) -> int:
    return rows


@step
def evaluate(a: int, b: int) -> None:
    pass


@pipeline(settings={"docker": base})
def training_pipeline() -> None:
    rows = load_data()
    model = Train_Model(rows)
    tuned = fine_tune(rows)
    evaluate(model, tuned)
    evaluate(model, tuned, id="evaluate-again")
