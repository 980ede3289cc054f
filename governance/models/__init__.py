"""Governance models, in unrelated groups.

``review``: approval policies, reviews and their history, sign-offs, evidence
items, notifications. ``audits``: fairness audits, mitigation runs and model
cards, the evidence producers that live in governance. ``risk_tiers``: requests
to lower a model's risk tier and their decisions.
"""

from governance.models.audits import *  # noqa: F403
from governance.models.review import *  # noqa: F403
from governance.models.risk_tiers import *  # noqa: F403
