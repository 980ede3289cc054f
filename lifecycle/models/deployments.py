"""Environments, deployments and what the serving processes report.

An ``Environment`` (``staging``, ``production``, ...) of a registered model holds
the routing state that every serving process reads: the stable version, the
candidate version and its share of the requests, the strategy step and the
phase. Its one writer is ``lifecycle.deployments`` (checked against the tables
in ``lifecycle.transitions``); each change bumps ``generation`` and appends an
``EnvironmentTransition`` history row and an audit event in the same
transaction. The environment's alias (``model@production``) follows the stable
version through the same service.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from common.models import BackgroundJob, TimeStampedModel
from common.permissions import PermissionManager
from lifecycle import transitions as t
from registry.models import ModelVersion, RegisteredModel


class EnvironmentPhase(models.TextChoices):
    IDLE = t.IDLE, "Idle"
    DEPLOYING = t.DEPLOYING, "Deploying"
    ROLLING = t.ROLLING, "Rolling out (canary)"
    SHADOWING = t.SHADOWING, "Shadowing"
    PREVIEWING = t.PREVIEWING, "Previewing (blue/green held)"


class CandidateMode(models.TextChoices):
    SPLIT = t.SPLIT, "Split (the candidate answers its share)"
    SHADOW = t.SHADOW, "Shadow (logged, never returned)"
    PREVIEW = t.PREVIEW, "Preview (answers only who asks for it)"


class Strategy(models.TextChoices):
    DIRECT = "direct", "Direct (switch at once after warm-up)"
    BLUE_GREEN = "blue_green", "Blue/green (warm everywhere, replay, one switch)"
    CANARY = "canary", "Canary (replay, then steps of traffic with analysis)"
    SHADOW = "shadow", "Shadow (scores a share of requests, never answers)"
    AB = "ab", "A/B experiment (a held split, judged, ended by a person)"


# Strategies that replay logged requests against the candidate before any exposure.
REPLAYED_STRATEGIES = frozenset({Strategy.BLUE_GREEN, Strategy.CANARY})


class DeploymentState(models.TextChoices):
    PENDING = t.PENDING, "Pending"
    WARMING = t.WARMING, "Warming"
    SUCCEEDED = t.SUCCEEDED, "Succeeded"
    FAILED = t.FAILED, "Failed"
    PROGRESSING = t.PROGRESSING, "Progressing"
    PAUSED = t.PAUSED, "Paused"
    ROLLED_BACK = t.ROLLED_BACK_STATE, "Rolled back"
    ABORTED = t.ABORTED, "Aborted"


class Environment(TimeStampedModel):
    """Where a model serves: its routing state, with one writer."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="environments"
    )
    name = models.SlugField(max_length=64)
    # Protected environments take approved versions only (governance's gate on
    # their alias) and are deployed by people with the deploy right.
    protected = models.BooleanField(default=False)
    phase = models.CharField(
        max_length=16, choices=EnvironmentPhase.choices, default=EnvironmentPhase.IDLE
    )
    stable_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    previous_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    candidate_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    candidate_share = models.FloatField(default=0.0)
    candidate_mode = models.CharField(
        max_length=8, choices=CandidateMode.choices, default=CandidateMode.SPLIT
    )
    step = models.PositiveIntegerField(default=0)
    # The version a deployment in progress asks every serving process to warm.
    target_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Bumped in the same transaction as every change above: the serving
    # processes' routing caches compare it (see lifecycle/serving.py).
    generation = models.PositiveBigIntegerField(default=0)
    stable_since = models.DateTimeField(null=True, blank=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Automatic rollbacks since the last rollout that finished well; at
    # ROLLOUT_FREEZE_AFTER the environment freezes (no new rollout) until a
    # person lifts it (lifecycle.rollouts).
    automatic_rollbacks = models.PositiveIntegerField(default=0)
    frozen = models.BooleanField(default=False)

    objects = PermissionManager()

    class Meta:
        ordering = ["registered_model", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "name"], name="environment_unique_name"
            ),
            models.CheckConstraint(
                condition=models.Q(candidate_share__gte=0) & models.Q(candidate_share__lte=1),
                name="environment_share_in_unit_interval",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}/{self.name}"

    def state(self) -> t.EnvironmentState:
        return t.EnvironmentState(
            phase=self.phase,
            stable=self.stable_version_id,
            previous=self.previous_version_id,
            candidate=self.candidate_version_id,
            share=self.candidate_share,
            step=self.step,
            target=self.target_version_id,
            mode=self.candidate_mode,
        )


class Deployment(BackgroundJob):
    """Moving an environment to a version; the job a worker runs (warm-up, switch).

    ``status`` is the job's (``common.jobs``); ``state`` is the deployment's
    own outcome, written only by ``lifecycle.deployments``.
    """

    permission_root = "environment__registered_model"
    task_name = "lifecycle.tasks.deployment_run"
    failure_handler = "lifecycle.deployments.deployment_gave_up"

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="deployments"
    )
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.DIRECT)
    state = models.CharField(
        max_length=16, choices=DeploymentState.choices, default=DeploymentState.PENDING
    )
    reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # {"processes": [{"host", "pid", "warmed"}], "note": ...} at the switch.
    warm_report = models.JSONField(default=dict, blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)

    # --- rollouts (canary, shadow, blue/green); written only by lifecycle.rollouts ---
    steps = models.JSONField(default=list, blank=True)  # canary: percentages, ending at 100
    step_seconds = models.FloatField(default=0.0)  # how long each step is held (and analysed)
    # shadow: share of requests also scored; A/B: the candidate's share of the split
    shadow_share = models.FloatField(default=0.0)
    # shadow: how long it runs; blue/green: how long the preview is held before the
    # switch (0: no preview, the switch follows the replay).
    duration_seconds = models.FloatField(default=0.0)
    # A/B: the experiment also ends after this many labelled requests (0: by time only),
    # judged on ``metric`` (blank: the task's first) by monitoring's A/B comparison.
    end_after_labels = models.PositiveIntegerField(default=0)
    metric = models.CharField(max_length=32, blank=True)
    thresholds = models.JSONField(default=dict, blank=True)  # merged with the defaults
    step_index = models.PositiveIntegerField(default=0)  # 1-based while exposed
    step_started_at = models.DateTimeField(null=True, blank=True)
    # When the controller looks next (the beat sweep claims due rows under the
    # environment's lock; None when nothing is due: not live, or paused).
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    failures = models.JSONField(default=dict, blank=True)  # failed analyses per check
    inconclusive_in_row = models.PositiveIntegerField(default=0)

    objects = PermissionManager()

    class Meta:
        ordering = ["-queued_at", "-id"]

    def __str__(self) -> str:
        return f"deployment #{self.pk} of v{self.version.number} to {self.environment}"


class AnalysisKind(models.TextChoices):
    REPLAY = "replay", "Replay of logged requests"
    STEP = "step", "Canary step"
    SHADOW = "shadow", "Shadow"
    AB = "ab", "A/B comparison"


class RolloutAnalysis(models.Model):
    """One analysis of a rollout's candidate against stable (append-only).

    ``figures`` holds every check's numbers and verdict
    (``lifecycle.rollout_analysis``); ``decision`` is what the controller did
    with it (advance, wait, pause, rollback, promote) and ``reason`` why.
    """

    permission_root = "deployment__environment__registered_model"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="analyses")
    kind = models.CharField(max_length=8, choices=AnalysisKind.choices)
    step_index = models.PositiveIntegerField(default=0)
    share = models.FloatField(default=0.0)
    verdict = models.CharField(max_length=16)
    decision = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    figures = models.JSONField(default=dict)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PermissionManager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} analysis of deployment #{self.deployment_id}: {self.verdict}"


class EnvironmentTransition(models.Model):
    """One change of an environment's state (append-only history)."""

    permission_root = "environment__registered_model"

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="transitions"
    )
    event = models.CharField(max_length=32)
    before = models.JSONField(null=True, blank=True)  # state, with version numbers
    after = models.JSONField()
    stable_before = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    stable_after = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    deployment = models.ForeignKey(
        Deployment, on_delete=models.PROTECT, null=True, blank=True, related_name="transitions"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    objects = PermissionManager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["environment", "-id"], name="envtransition_env_id")]

    def __str__(self) -> str:
        return f"{self.environment} {self.event} at {self.occurred_at:%Y-%m-%d %H:%M}"


class ServingProcess(models.Model):
    """A live serving process: refreshed about every second by its poller thread.

    ``warmed`` lists the version ids it has loaded and answered a prediction
    with (the example row); ``failed`` maps a version id to why it could not.
    A deployment switches once every process seen in the last few seconds
    reports its version warmed.
    """

    token = models.CharField(max_length=32, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    warmed = models.JSONField(default=list, blank=True)
    failed = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"serving process {self.host}:{self.pid}"


class ServingLogBatch(models.Model):
    """What one serving process logged for one environment and version in one flush.

    The rows (request id, time, version, shadow flag, latency, status, error
    code and column, features, prediction, probability) are a Parquet blob;
    ``summary`` holds the counts the deployments panel and the canary analysis
    read without opening it (requests, errors by code and column, latency).
    The successful rows also went to monitoring as ``prediction_batch``.
    """

    permission_root = "environment__registered_model"

    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="log_batches"
    )
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    batch_id = models.CharField(max_length=100)
    storage_key = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField()
    error_count = models.PositiveIntegerField(default=0)
    shadow_count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    summary = models.JSONField(default=dict)
    prediction_batch = models.ForeignKey(
        "monitoring.PredictionBatch",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PermissionManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "batch_id"], name="servinglog_unique_batch"
            )
        ]
        indexes = [models.Index(fields=["environment", "last_at"], name="servinglog_env_last")]

    def __str__(self) -> str:
        return f"{self.environment} log {self.batch_id}"
