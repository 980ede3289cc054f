"""The lifecycle's models, one module per aggregate.

- ``evaluations``: an evaluation of a version beside the champion (evidence).
"""

from lifecycle.models.evaluations import Evaluation

__all__ = ["Evaluation"]
