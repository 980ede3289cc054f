"""The lifecycle's models, one module per aggregate.

- ``evaluations``: an evaluation of a version beside the champion (evidence), and
  per-prediction explanations of a sample of its rows.
- ``deployments``: environments (routing state), deployments, their history,
  the live serving processes and the serving log.
- ``retraining``: retraining policies, runs and skipped triggers.
"""

from lifecycle.models.deployments import (
    REPLAYED_STRATEGIES,
    AnalysisKind,
    CandidateMode,
    Deployment,
    DeploymentState,
    Environment,
    EnvironmentPhase,
    EnvironmentTransition,
    RolloutAnalysis,
    ServingLogBatch,
    ServingProcess,
    Strategy,
)
from lifecycle.models.evaluations import Evaluation, Explanation
from lifecycle.models.retraining import (
    AUTOMATIC_TRIGGERS,
    RetrainingOutcome,
    RetrainingPolicy,
    RetrainingRun,
    RetrainingSkip,
    RetrainingStrategy,
    RetrainingTrigger,
)

__all__ = [
    "AUTOMATIC_TRIGGERS",
    "REPLAYED_STRATEGIES",
    "AnalysisKind",
    "CandidateMode",
    "Deployment",
    "DeploymentState",
    "Environment",
    "EnvironmentPhase",
    "EnvironmentTransition",
    "Evaluation",
    "Explanation",
    "RetrainingOutcome",
    "RetrainingPolicy",
    "RetrainingRun",
    "RetrainingSkip",
    "RetrainingStrategy",
    "RetrainingTrigger",
    "RolloutAnalysis",
    "ServingLogBatch",
    "ServingProcess",
    "Strategy",
]
