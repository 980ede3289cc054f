"""Governance models, in two unrelated groups.

``review``: approval policies, reviews and their history, sign-offs, evidence
items, notifications. ``audits``: fairness audits, mitigation runs and model
cards, the evidence producers that live in governance.
"""

from governance.models.fairness import *  # noqa: F403
from governance.models.reviews import *  # noqa: F403
