"""The lifecycle's models, one module per aggregate.

- ``evaluations``: an evaluation of a version beside the champion (evidence).
- ``retraining``: retraining policies, runs and skipped triggers.
"""

from lifecycle.models.evaluations import Evaluation
from lifecycle.models.retraining import (
    AUTOMATIC_TRIGGERS,
    RetrainingOutcome,
    RetrainingPolicy,
    RetrainingRun,
    RetrainingSkip,
    RetrainingTrigger,
    Strategy,
)

__all__ = [
    "AUTOMATIC_TRIGGERS",
    "Evaluation",
    "RetrainingOutcome",
    "RetrainingPolicy",
    "RetrainingRun",
    "RetrainingSkip",
    "RetrainingTrigger",
    "Strategy",
]
