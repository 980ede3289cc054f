from __future__ import annotations

from django.conf import settings
from django.db import models

from common.models import BackgroundJob
from common.permissions import PermissionManager
from registry.models import Dataset, ModelVersion


class Evaluation(BackgroundJob):
    """A version scored on an evaluation dataset, beside the champion on the same rows.

    The report, the champion's report and the permutation importance are stored
    as plain JSON; ``sha256`` is the digest of their canonical form, which is
    what a sign-off on this evidence records.
    """

    permission_root = "version__registered_model"
    task_name = "lifecycle.tasks.heavy_evaluate"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="evaluations")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="evaluations")
    dataset_sha256 = models.CharField(max_length=64)
    target_column = models.CharField(max_length=200)
    # None when a system job asked for it (a retraining run's follow-up).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    champion = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    report = models.JSONField(null=True, blank=True)
    champion_report = models.JSONField(null=True, blank=True)
    importance = models.JSONField(null=True, blank=True)
    champion_importance = models.JSONField(null=True, blank=True)
    # Metric thresholds of the approval policy, frozen when the job is queued,
    # e.g. {"roc_auc": {"min": 0.7}}; ``passed`` is the verdict against them.
    thresholds = models.JSONField(default=dict, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    threshold_failures = models.JSONField(default=list, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)

    objects = PermissionManager()

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} of {self.version} on {self.dataset}"


class Explanation(BackgroundJob):
    """Per-prediction explanations of a sample of a version's rows, computed by a worker.

    The rows are the latest logged predictions of the version (its prediction
    batches), or, when nothing was logged yet, rows of its latest evaluation's
    dataset (``source`` says which). ``result`` is ``lifecycle.attribution.explain``'s
    plain JSON: the method (``linear`` or ``baseline_replacement``), the score
    explained and, per row, its inputs and each feature's contribution.
    """

    permission_root = "version__registered_model"
    task_name = "lifecycle.tasks.heavy_explain"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="explanations")
    sample_size = models.PositiveIntegerField(default=10)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=30, blank=True)  # prediction_log | evaluation_dataset
    result = models.JSONField(null=True, blank=True)

    objects = PermissionManager()

    class Meta:
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"explanation #{self.pk} of {self.version}"
