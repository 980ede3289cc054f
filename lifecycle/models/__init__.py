"""The lifecycle's models, one module per aggregate.

- ``evaluations``: an evaluation of a version beside the champion (evidence).
- ``deployments``: environments (routing state), deployments, their history,
  the live serving processes and the serving log.
"""

from lifecycle.models.deployments import (
    Deployment,
    DeploymentState,
    Environment,
    EnvironmentPhase,
    EnvironmentTransition,
    ServingLogBatch,
    ServingProcess,
    Strategy,
)
from lifecycle.models.evaluations import Evaluation

__all__ = [
    "Deployment",
    "DeploymentState",
    "Environment",
    "EnvironmentPhase",
    "EnvironmentTransition",
    "Evaluation",
    "ServingLogBatch",
    "ServingProcess",
    "Strategy",
]
