"""Governance models, one module per aggregate (re-exported here).

``policies``: approval policies. ``reviews``: reviews and their history,
sign-offs, evidence items. ``fairness``: fairness audits and mitigation runs.
``model_cards``: the narrative half of model cards. ``webhooks``: outgoing
webhooks and their delivery log. ``risk_tiers``: requests to lower a model's
risk tier and their decisions. Enumerations live in ``governance.choices``.
"""

from governance.models.fairness import *  # noqa: F403
from governance.models.model_cards import *  # noqa: F403
from governance.models.policies import *  # noqa: F403
from governance.models.reviews import *  # noqa: F403
from governance.models.risk_tiers import *  # noqa: F403
from governance.models.webhooks import *  # noqa: F403
