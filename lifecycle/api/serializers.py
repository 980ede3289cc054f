from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from lifecycle import strategies
from lifecycle.models import (
    Deployment,
    Environment,
    Evaluation,
    Explanation,
    RetrainingPolicy,
    RetrainingRun,
    RetrainingStrategy,
    Strategy,
)
from lifecycle.retraining import POLICY_FIELDS
from lifecycle.services import EXPLANATION_MAX_ROWS

DATASET_REF = inline_serializer(
    "DatasetRef",
    {
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "version": serializers.IntegerField(),
        "sha256": serializers.CharField(),
    },
    allow_null=True,
)


class EvaluationSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    dataset = serializers.SerializerMethodField()
    champion = serializers.IntegerField(source="champion.number", read_only=True, default=None)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, default=None
    )

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "model",
            "version",
            "status",
            "error",
            "dataset",
            "target_column",
            "requested_by",
            "queued_at",
            "started_at",
            "finished_at",
            "attempts",
            "champion",
            "report",
            "champion_report",
            "importance",
            "champion_importance",
            "thresholds",
            "passed",
            "threshold_failures",
            "sha256",
        ]

    def get_dataset(self, obj: Evaluation) -> dict:
        return {
            "id": obj.dataset_id,
            "name": obj.dataset.name,
            "version": obj.dataset.version,
            "sha256": obj.dataset_sha256,
        }


class ExplanationSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, default=None
    )

    class Meta:
        model = Explanation
        fields = [
            "id",
            "model",
            "version",
            "status",
            "error",
            "sample_size",
            "source",
            "requested_by",
            "queued_at",
            "started_at",
            "finished_at",
            "attempts",
            "result",
        ]


class ExplanationRequestSerializer(serializers.Serializer):
    sample_size = serializers.IntegerField(
        required=False, default=10, min_value=1, max_value=EXPLANATION_MAX_ROWS
    )


class EvaluationRequestSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    target_column = serializers.CharField(max_length=200)


class EnvironmentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    alias = serializers.SerializerMethodField()
    stable = serializers.IntegerField(source="stable_version.number", default=None, read_only=True)
    previous = serializers.IntegerField(
        source="previous_version.number", default=None, read_only=True
    )
    candidate = serializers.IntegerField(
        source="candidate_version.number", default=None, read_only=True
    )
    target = serializers.IntegerField(source="target_version.number", default=None, read_only=True)
    deployed_by = serializers.CharField(source="deployed_by.username", default=None, read_only=True)

    class Meta:
        model = Environment
        fields = [
            "model",
            "name",
            "alias",
            "protected",
            "phase",
            "stable",
            "previous",
            "candidate",
            "candidate_share",
            "step",
            "candidate_mode",
            "target",
            "frozen",
            "automatic_rollbacks",
            "generation",
            "stable_since",
            "deployed_by",
            "updated_at",
        ]

    def get_alias(self, obj: Environment) -> str:
        return f"{obj.registered_model.name}@{obj.name}"


class EnvironmentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    protected = serializers.BooleanField(required=False, allow_null=True, default=None)


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="environment.registered_model.name", read_only=True)
    environment = serializers.CharField(source="environment.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "model",
            "environment",
            "version",
            "strategy",
            "state",
            "reason",
            "status",
            "requested_by",
            "queued_at",
            "started_at",
            "finished_at",
            "switched_at",
            "warm_report",
            "log",
            "steps",
            "step_seconds",
            "step_index",
            "current_share",
            "shadow_share",
            "duration_seconds",
            "end_after_labels",
            "metric",
            "thresholds",
            "step_started_at",
            "next_check_at",
            "failures",
            "analyses",
        ]

    current_share = serializers.SerializerMethodField()
    analyses = serializers.SerializerMethodField()

    def get_current_share(self, obj: Deployment) -> float | None:
        if obj.strategy == Strategy.CANARY and obj.step_index:
            return obj.steps[obj.step_index - 1] / 100.0
        if obj.strategy in (Strategy.SHADOW, Strategy.AB) and obj.state in (
            "progressing",
            "paused",
        ):
            return obj.shadow_share
        return None

    def get_analyses(self, obj: Deployment) -> list[dict[str, Any]]:
        return [
            {
                "id": a.pk,
                "kind": a.kind,
                "step": a.step_index,
                "share": a.share,
                "verdict": a.verdict,
                "decision": a.decision,
                "reason": a.reason,
                "figures": a.figures,
                "window_start": a.window_start,
                "window_end": a.window_end,
                "created_at": a.created_at,
            }
            for a in obj.analyses.all()
        ]


class DeploymentRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    strategy = serializers.ChoiceField(choices=Strategy.choices, default=Strategy.DIRECT)
    # Checked by lifecycle.rollouts.rollout_plan (a 400 naming the field).
    steps = serializers.JSONField(required=False)
    step_seconds = serializers.FloatField(required=False, min_value=1, max_value=604800)
    thresholds = serializers.JSONField(required=False)
    shadow_share = serializers.FloatField(required=False)
    duration_seconds = serializers.FloatField(required=False, min_value=1, max_value=604800)
    # blue/green: preview the candidate this long (promote switches earlier), then switch.
    hold_seconds = serializers.FloatField(required=False, min_value=1, max_value=604800)
    # ab: the candidate's share, an end after this many labelled requests, the metric.
    share = serializers.FloatField(required=False)
    end_after_labels = serializers.IntegerField(required=False, min_value=0, max_value=10_000_000)
    metric = serializers.CharField(required=False, max_length=32)


class RolloutActionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    # promote: which side an A/B experiment ends on (the candidate's number by default)
    version = serializers.IntegerField(required=False, min_value=1)


class RollbackRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


# --- retraining -------------------------------------------------------------------------


def _dataset_ref(dataset: Any) -> dict[str, Any] | None:
    if dataset is None:
        return None
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "version": dataset.version,
        "sha256": dataset.sha256,
    }


class RetrainingPolicySerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    training_dataset = serializers.SerializerMethodField()
    evaluation_dataset = serializers.SerializerMethodField()
    next_run_at = serializers.SerializerMethodField()
    periodic_task = serializers.CharField(source="periodic_task.name", read_only=True, default=None)
    updated_by = serializers.CharField(source="updated_by.username", read_only=True, default=None)

    class Meta:
        model = RetrainingPolicy
        # The policy's own fields are the service's list (``POLICY_FIELDS``), so the
        # API shows exactly what ``retraining_policy_set`` writes and audits.
        fields = [
            "model",
            *POLICY_FIELDS,
            "next_run_at",
            "periodic_task",
            "updated_by",
            "updated_at",
        ]

    @extend_schema_field(DATASET_REF)
    def get_training_dataset(self, obj: RetrainingPolicy) -> dict[str, Any] | None:
        return _dataset_ref(obj.training_dataset)

    @extend_schema_field(DATASET_REF)
    def get_evaluation_dataset(self, obj: RetrainingPolicy) -> dict[str, Any] | None:
        return _dataset_ref(obj.evaluation_dataset)

    def get_next_run_at(self, obj: RetrainingPolicy) -> datetime | None:
        from lifecycle.retraining import next_cron_time

        if not (obj.enabled and obj.schedule):
            return None
        return next_cron_time(obj.schedule, timezone.now())


class RetrainingPolicyWriteSerializer(serializers.Serializer):
    """PUT body: every field is optional; those left out keep their value."""

    enabled = serializers.BooleanField(required=False)
    strategy = serializers.ChoiceField(choices=RetrainingStrategy.choices, required=False)
    params = serializers.DictField(required=False)
    schedule = serializers.CharField(required=False, allow_blank=True, max_length=100)
    on_alert = serializers.BooleanField(required=False)
    on_new_dataset = serializers.BooleanField(required=False)
    training_dataset = serializers.IntegerField(required=False, allow_null=True)
    evaluation_dataset = serializers.IntegerField(required=False, allow_null=True)
    target_column = serializers.CharField(required=False, allow_blank=True, max_length=200)
    production_window_hours = serializers.IntegerField(required=False, min_value=0)
    max_rows = serializers.IntegerField(required=False, allow_null=True, min_value=10)
    holdout_fraction = serializers.FloatField(required=False)
    seed = serializers.IntegerField(required=False, min_value=0)
    cooldown_minutes = serializers.IntegerField(required=False, min_value=0)
    debounce_checks = serializers.IntegerField(required=False, min_value=1)
    debounce_window = serializers.IntegerField(required=False, min_value=1)
    daily_budget = serializers.IntegerField(required=False, min_value=0)
    auto_submit = serializers.BooleanField(required=False)
    primary_metric = serializers.CharField(required=False, max_length=30)
    tolerance = serializers.FloatField(required=False, min_value=0)
    sensitive_columns = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=4
    )


class RetrainRequestSerializer(serializers.Serializer):
    """POST .../retrain/: everything optional; the policy fills in the rest."""

    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    force = serializers.BooleanField(required=False, default=False)
    strategy = serializers.ChoiceField(choices=RetrainingStrategy.choices, required=False)
    params = serializers.DictField(required=False)
    parent = serializers.IntegerField(required=False, min_value=1, help_text="version number")
    training_dataset = serializers.IntegerField(required=False)
    evaluation_dataset = serializers.IntegerField(required=False)
    production_window_hours = serializers.IntegerField(required=False, min_value=0)
    seed = serializers.IntegerField(required=False, min_value=0)
    fairness_audit = serializers.IntegerField(
        required=False, help_text="a failed fairness audit to mitigate (fairness_mitigation)"
    )


class MitigationRequestSerializer(serializers.Serializer):
    """POST .../fairness-audits/{id}/mitigations/: a fairness_mitigation run of the audit."""

    method = serializers.ChoiceField(
        choices=strategies.MITIGATION_METHODS, default=strategies.MITIGATION_METHODS[0]
    )
    constraint = serializers.ChoiceField(
        choices=strategies.MITIGATION_CONSTRAINTS, default=strategies.MITIGATION_CONSTRAINTS[0]
    )
    random_state = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    force = serializers.BooleanField(required=False, default=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class RetrainingRunSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, default=None
    )
    parent = serializers.IntegerField(source="parent.number", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True, default=None)
    champion = serializers.IntegerField(source="champion.number", read_only=True, default=None)
    alert = serializers.IntegerField(source="alert_id", read_only=True)
    signal = serializers.IntegerField(source="signal_id", read_only=True)
    fairness_audit = serializers.IntegerField(source="fairness_audit_id", read_only=True)
    evaluation = serializers.IntegerField(source="evaluation_id", read_only=True)
    follow_up_audit = serializers.IntegerField(source="follow_up_audit_id", read_only=True)
    trigger_dataset = serializers.SerializerMethodField()
    training_dataset = serializers.SerializerMethodField()
    evaluation_dataset = serializers.SerializerMethodField()
    train_dataset = serializers.SerializerMethodField()
    holdout_dataset = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = RetrainingRun
        fields = [
            "id",
            "model",
            "status",
            "outcome",
            "outcome_reason",
            "error",
            "trigger",
            "reason",
            "forced",
            "requested_by",
            "alert",
            "signal",
            "trigger_dataset",
            "fairness_audit",
            "strategy",
            "params",
            "seed",
            "parent",
            "version",
            "champion",
            "training_dataset",
            "evaluation_dataset",
            "target_column",
            "production_window_hours",
            "window_end",
            "max_rows",
            "holdout_fraction",
            "primary_metric",
            "tolerance",
            "auto_submit",
            "sensitive_columns",
            "train_dataset",
            "holdout_dataset",
            "comparison",
            "evaluation",
            "follow_up_audit",
            "data_record",
            "training_record",
            "environment",
            "timings",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "attempts",
            "log",
            "url",
        ]

    @extend_schema_field(DATASET_REF)
    def get_trigger_dataset(self, obj: RetrainingRun) -> dict[str, Any] | None:
        return _dataset_ref(obj.trigger_dataset)

    @extend_schema_field(DATASET_REF)
    def get_training_dataset(self, obj: RetrainingRun) -> dict[str, Any] | None:
        return _dataset_ref(obj.training_dataset)

    @extend_schema_field(DATASET_REF)
    def get_evaluation_dataset(self, obj: RetrainingRun) -> dict[str, Any] | None:
        return _dataset_ref(obj.evaluation_dataset)

    @extend_schema_field(DATASET_REF)
    def get_train_dataset(self, obj: RetrainingRun) -> dict[str, Any] | None:
        return _dataset_ref(obj.train_dataset)

    @extend_schema_field(DATASET_REF)
    def get_holdout_dataset(self, obj: RetrainingRun) -> dict[str, Any] | None:
        return _dataset_ref(obj.holdout_dataset)

    def get_url(self, obj: RetrainingRun) -> str:
        path = reverse("api:retraining-run-detail", args=[obj.registered_model.name, obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path
