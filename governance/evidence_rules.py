"""What makes an evidence item count for a review, beyond its pass flag.

Producers freeze the thresholds that judge their result when their job is
queued (``common.evidence.policy_thresholds``): the frozen review's policy, or,
before submission, the policy of the model's tier at that moment. A review may
then be frozen under another policy (the tier was raised, an administrator
added a stricter policy version), so an item can arrive judged by weaker
thresholds than the review's. Two rules close that, read by the checklist:

1. Thresholds: an item that states the thresholds it was judged by
   (``details["thresholds"]``: evaluation reports, fairness audits) counts only
   if they equal what the review's policy sets for its kind; otherwise the job
   must run again (it then freezes the review's thresholds).
2. Sensitive features: a fairness audit counts only if it covers every sensitive
   feature that an earlier completed audit of the same version covered, so a
   failed audit cannot be replaced by a new one on other columns.

Items that state neither (informative items, items filed before these rules)
are judged by their pass flag alone.
"""

from __future__ import annotations

from typing import Any

from common.audit import to_plain_json
from common.evidence import DEFAULT_THRESHOLDS, FAIRNESS_AUDIT
from governance.models import Evidence, FairnessAudit


def effective_thresholds(kind: str, policy_answer: dict[str, Any] | None) -> dict[str, Any]:
    """What a producer freezes for ``kind`` given the policy's answer (or the defaults)."""
    answer = dict(policy_answer if policy_answer is not None else DEFAULT_THRESHOLDS.get(kind, {}))
    if kind == FAIRNESS_AUDIT:  # the audit stores the group-size floor beside the rules
        answer["min_group_size"] = int(answer.get("min_group_size", 30))
    return answer


def objection(item: Evidence, *, policy_answer: dict[str, Any] | None) -> str | None:
    """Why ``item`` does not count for a review whose policy answers ``policy_answer``
    for its kind, or None when it counts."""
    details = item.details or {}
    label = item.kind.replace("_", " ")
    if "thresholds" in details:
        wanted = to_plain_json(effective_thresholds(item.kind, policy_answer))
        if to_plain_json(details["thresholds"]) != wanted:
            return (
                f"The latest {label} was judged by thresholds {details['thresholds']}, not by "
                f"this review's policy ({wanted}); run it again."
            )
    if item.kind == FAIRNESS_AUDIT and "sensitive_features" in details:
        earlier: set[str] = set()
        for columns in FairnessAudit.objects.filter(
            version_id=item.version_id, status="succeeded"
        ).values_list("sensitive_columns", flat=True):
            earlier.update(columns or [])
        left_out = sorted(earlier - set(details["sensitive_features"]))
        if left_out:
            return (
                f"The latest fairness audit leaves out sensitive features {left_out} that an "
                "earlier audit of this version covered; audit again including them."
            )
    return None
