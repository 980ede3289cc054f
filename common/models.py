from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


JOB_TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


class BackgroundJob(models.Model):
    """A unit of background work. The row is the truth; the broker carries its id.

    ``status`` has one writer, ``common.jobs``. ``succeeded`` means the job ran
    to its end and recorded its outcome on the domain row (a validation that
    rejects an artifact *succeeded*); ``failed`` means it could not run to its
    end even after its retries.
    """

    #: Celery task name that runs this job; it takes the row's primary key.
    task_name: ClassVar[str]
    #: Dotted path of a service called as ``handler(job=job)`` once the job has
    #: finally failed (retries exhausted or worker lost), so the domain row
    #: never stays in an in-between state.
    failure_handler: ClassVar[str | None] = None

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class AuditEvent(models.Model):
    """One link of the append-only, hash-chained audit trail.

    Written only by ``common.audit.audit_record`` in the transaction of the
    change it describes. ``hash`` is SHA-256 over the canonical JSON form of
    the other fields including ``prev_hash`` (see ``common.audit``). On
    PostgreSQL a trigger refuses UPDATE and DELETE on this table.
    """

    seq = models.BigIntegerField(unique=True, editable=False)
    occurred_at = models.DateTimeField(editable=False)
    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    actor = models.CharField(max_length=150, editable=False)
    action = models.CharField(max_length=100, editable=False)
    object_type = models.CharField(max_length=100, editable=False)
    object_id = models.CharField(max_length=64, editable=False)
    object_repr = models.CharField(max_length=200, editable=False)
    before = models.JSONField(null=True, blank=True, editable=False)
    after = models.JSONField(null=True, blank=True, editable=False)
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["occurred_at"]),
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["action"]),
            models.Index(fields=["actor"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_repr} by {self.actor}"


class AuditChainHead(models.Model):
    """Singleton row holding the chain's tip.

    Appending updates this row first, which takes its row lock (PostgreSQL) or
    the database write lock (SQLite) until commit, so concurrent appenders
    queue up and the chain never forks. ``AuditEvent.seq`` is unique as a
    second line of defence.
    """

    seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit chain head at #{self.seq}"


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` of one user at one endpoint, with the answer it got.

    Written by ``common.idempotency`` only, in the transaction of the change it
    answers: a key is committed exactly when its change is, and always with its
    answer. The unique constraint is also the lock that makes a concurrent
    duplicate wait for the first request and then replay its answer.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    #: "METHOD /path": a key is scoped to the operation and the object it names.
    endpoint = models.CharField(max_length=512)
    #: SHA-256 over the method, query string and body (fields and file bytes).
    request_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "endpoint", "key"], name="idempotency_key_once_per_user_endpoint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} at {self.endpoint}"
