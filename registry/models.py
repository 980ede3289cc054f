from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from common.metrics import positive_class
from common.models import BackgroundJob, TimeStampedModel
from common.permissions import PermissionManager, PermissionRootMixin
from registry.choices import DatasetRole, RiskTier, Task, VersionStatus

__all__ = ["Alias", "Dataset", "ModelVersion", "RegisteredModel", "RegistrationJob"]


class RegisteredModel(PermissionRootMixin, TimeStampedModel):
    """The aggregate root: permissions are granted here and inherited below."""

    PERMISSION_ACTIONS = {
        "view": "view_registeredmodel",
        "change": "change_registeredmodel",
        "register": "register_version",
        "approve": "approve_version",
        "deploy": "deploy_version",
        "manage": "manage_registeredmodel",
        "serve": "serve_registeredmodel",
    }
    permission_root = ""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    task = models.CharField(max_length=20, choices=Task.choices)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models"
    )
    team = models.ForeignKey(
        Group, on_delete=models.SET_NULL, null=True, blank=True, related_name="models"
    )
    tags = models.JSONField(default=list, blank=True)
    # Highest number ever handed out; numbers are never reused, even after a
    # failed registration. Incremented under this row's lock.
    last_version_number = models.PositiveIntegerField(default=0, editable=False)
    # Bumped, in the same transaction, by every change that alters what an alias
    # resolution returns; resolution caches key on it (see registry/cache.py).
    resolution_generation = models.PositiveBigIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    objects = PermissionManager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("register_version", "Can register versions of the model"),
            ("approve_version", "Can sign off versions of the model"),
            ("deploy_version", "Can deploy versions and move protected aliases"),
            ("manage_registeredmodel", "Can manage access to the model and delete it"),
            ("serve_registeredmodel", "Can call the model's prediction endpoints"),
        ]

    def __str__(self) -> str:
        return self.name


class RegisteredModelUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)


class RegisteredModelGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE)


class Dataset(TimeStampedModel):
    """A versioned table stored as Parquet under its digest."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="datasets"
    )
    name = models.SlugField(max_length=100)
    version = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=DatasetRole.choices)
    description = models.TextField(blank=True)
    storage_key = models.CharField(max_length=200, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    size_bytes = models.BigIntegerField(editable=False)
    row_count = models.BigIntegerField(editable=False)
    # [{"name": "age", "dtype": "float64"}, ...] in column order.
    schema = models.JSONField(editable=False)
    source_format = models.CharField(max_length=10, editable=False)
    source_sha256 = models.CharField(max_length=64, editable=False)
    # None when a system job stored it (a retraining run's training rows or hold-out).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = PermissionManager()

    class Meta:
        ordering = ["registered_model", "name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "name", "version"], name="dataset_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}/{self.name}:v{self.version}"

    @property
    def column_names(self) -> list[str]:
        return [column["name"] for column in self.schema]


class ModelVersion(TimeStampedModel):
    """An immutable version once ready: artifact, signature and lineage are frozen."""

    permission_root = "registered_model"
    IMMUTABLE_FIELDS = (
        "artifact_key",
        "artifact_sha256",
        "artifact_size",
        "signature",
        "hyperparameters",
        "estimator",
        "metrics",
        "training_dataset",
        "training_dataset_sha256",
        "target_column",
        "parent",
        "source_run_id",
        "source_commit",
    )

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=VersionStatus.choices, default=VersionStatus.PENDING
    )
    status_reason = models.TextField(blank=True)
    artifact_key = models.CharField(max_length=200, editable=False)
    artifact_sha256 = models.CharField(max_length=64, db_index=True, editable=False)
    artifact_size = models.BigIntegerField(editable=False)
    # {"inputs": [{"name", "dtype"}], "output": {"kind": "label"|"value", "classes": [...]}}
    # "classes" is the classifier's own classes_ (scikit-learn's order), recorded at
    # validation: classes[1] is the positive class everywhere (common.metrics).
    signature = models.JSONField(default=dict, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    estimator = models.CharField(max_length=200, blank=True, editable=False)
    metrics = models.JSONField(default=dict, blank=True)
    training_dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, null=True, blank=True, related_name="trained_versions"
    )
    training_dataset_sha256 = models.CharField(max_length=64, blank=True)
    target_column = models.CharField(max_length=200, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    source_run_id = models.CharField(max_length=200, blank=True)
    source_commit = models.CharField(max_length=64, blank=True)
    # The author: the user who uploaded the artifact (a person or a pipeline's
    # service account); None when a ModelGate job produced it (a fairness
    # mitigation, a retraining run), whose run is ``source_run_id``.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="registered_versions",
    )
    # Who asked for the job that produced the artifact; requesting a job does
    # not make one its author (governance's sign-off rules depend on that).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    objects = PermissionManager()

    class Meta:
        ordering = ["registered_model", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "number"], name="version_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.number}"

    @property
    def author_display(self) -> str:
        """The author as people read it: a username, or the job that produced the version."""
        if self.created_by_id:
            return self.created_by.get_username()
        return (
            f"a ModelGate job ({self.source_run_id})" if self.source_run_id else "a ModelGate job"
        )

    @property
    def feature_names(self) -> list[str]:
        return [column["name"] for column in self.signature.get("inputs", [])]

    @property
    def classes(self) -> list[Any] | None:
        """The classifier's ``classes_`` as recorded at validation; ``None`` if not recorded
        (regression, or a version validated before classes were required)."""
        classes = (self.signature.get("output") or {}).get("classes")
        return list(classes) if classes else None

    @property
    def positive_class(self) -> Any:
        """``classes[1]`` of a binary classifier (``common.metrics.positive_class``)."""
        return positive_class(self.classes)


class RegistrationJob(BackgroundJob):
    """Validation of a freshly uploaded artifact, run by a worker."""

    permission_root = "version__registered_model"
    task_name = "registry.tasks.validate_version"
    failure_handler = "registry.services.model_version_registration_gave_up"

    version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="registration_job"
    )

    objects = PermissionManager()

    def __str__(self) -> str:
        return f"validation of {self.version}"


class Alias(TimeStampedModel):
    """``model@name`` → one version. Protected aliases move only with deploy rights."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="aliases"
    )
    name = models.SlugField(max_length=64)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    protected = models.BooleanField(default=False)
    # None when a system job moved it (an automatic rollback, the demo loader).
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = PermissionManager()

    class Meta:
        verbose_name_plural = "aliases"
        ordering = ["registered_model", "name"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "name"], name="alias_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}@{self.name}"
