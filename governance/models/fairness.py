"""Fairness audits: evidence made in governance.

A failed audit's mitigation is a retraining run (``lifecycle.models.RetrainingRun``,
strategy ``fairness_mitigation``), like every other candidate version.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from common.models import BackgroundJob
from common.permissions import PermissionManager
from registry.models import Dataset, ModelVersion

__all__ = ["FairnessAudit"]


class FairnessAudit(BackgroundJob):
    """A version's predictions on a dataset, judged group by group.

    ``thresholds`` and ``min_group_size`` are frozen from the approval policy
    when the audit is queued: a policy change later cannot re-judge it. The
    report is ``governance.fairness.audit``'s plain output; ``sha256`` is the
    digest of its canonical form plus what it was run on.
    """

    permission_root = "version__registered_model"
    task_name = "governance.tasks.heavy_fairness_audit"

    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="fairness_audits"
    )
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    dataset_sha256 = models.CharField(max_length=64)
    target_column = models.CharField(max_length=200)
    sensitive_columns = models.JSONField()
    thresholds = models.JSONField(default=dict)
    min_group_size = models.PositiveIntegerField(default=30)
    bootstrap = models.PositiveIntegerField(default=0)
    random_state = models.IntegerField(default=0)
    # None when a system job asked for it (a retraining run's follow-up).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    report = models.JSONField(null=True, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)

    objects = PermissionManager()

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"fairness audit #{self.pk} of {self.version}"
