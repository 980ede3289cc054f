"""Every write to the registry. Views, serializers, commands and tasks call these.

Each service validates, locks what it changes, writes, appends an audit event
in the same transaction (after its other locks: see ``common.audit``) and
schedules side effects on commit.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from common.audit import SystemActor, audit_record, snapshot
from common.errors import DomainError, conflict
from common.events import publish_event
from common.jobs import job_enqueue, job_finish
from common.permissions import can_globally, require
from common.storage import cached_blob_path, sha256_of, store_blob
from registry.artifacts import ArtifactRejected, inspect_artifact
from registry.choices import VERSION_TRANSITIONS, RiskTier, Task, VersionStatus
from registry.gates import check_alias_gates, check_alias_guards, check_model_change_gates
from registry.models import Alias, Dataset, ModelVersion, RegisteredModel, RegistrationJob
from registry.tables import TableRejected, convert_to_parquet, read_head, sniff_format

logger = logging.getLogger(__name__)

ROLES: dict[str, tuple[str, ...]] = {
    "viewer": ("view",),
    "contributor": ("view", "register"),
    "maintainer": ("view", "change", "register"),
    "approver": ("view", "approve"),
    "deployer": ("view", "deploy"),
    # A service account that calls the prediction endpoints (/serve/...).
    "serving": ("view", "serve"),
    "owner": ("view", "change", "register", "approve", "deploy", "manage", "serve"),
}
MODEL_FIELDS = ("name", "description", "task", "risk_tier", "owner", "team", "tags")
VERSION_FIELDS = (
    "number",
    "status",
    "status_reason",
    "artifact_sha256",
    "artifact_size",
    "signature",
    "metrics",
    "training_dataset",
    "training_dataset_sha256",
    "target_column",
    "parent",
    "source_run_id",
    "source_commit",
    "created_by",
    "requested_by",
    "description",
    "tags",
)
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,49}$")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


# --- helpers ---------------------------------------------------------------


def clean_tags(tags: Iterable[Any] | None) -> list[str]:
    tags = list(tags or [])
    if len(tags) > 50:
        raise DomainError("invalid", "At most 50 tags are allowed.", details={"tags": "too many"})
    bad = [t for t in tags if not isinstance(t, str) or not _TAG.match(t)]
    if bad:
        raise DomainError(
            "invalid",
            "Tags are 1-50 characters of letters, digits, '.', '_', ':' or '-'.",
            details={"tags": [str(b)[:60] for b in bad]},
        )
    return sorted(set(tags))


def _check_slug(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise DomainError(
            "invalid",
            f"The {what} must be 1-100 lowercase letters, digits or hyphens, "
            "starting and ending with a letter or digit.",
            details={what: value if isinstance(value, str) else None},
        )
    return value


def _grant_role(model: RegisteredModel, holder: AbstractBaseUser | Group, role: str) -> None:
    for action in ROLES[role]:
        assign_perm(RegisteredModel.PERMISSION_ACTIONS[action], holder, model)


def _person(actor: Any) -> Any:
    """The user to record as creator; None for a system actor (a job, beat, the demo)."""
    return None if isinstance(actor, SystemActor) else actor


def _bump_resolution(model_pk: int) -> None:
    """Invalidate every cached resolution of a model (see registry/cache.py)."""
    RegisteredModel.objects.filter(pk=model_pk).update(
        resolution_generation=F("resolution_generation") + 1
    )


# --- registered models -----------------------------------------------------


@transaction.atomic
def registered_model_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    task: str,
    risk_tier: str,
    description: str = "",
    team: Group | None = None,
    tags: Iterable[str] | None = None,
    owner: AbstractBaseUser | None = None,
) -> RegisteredModel:
    """Create a model; its owner gets every right on it, its team maintains it."""
    if not can_globally(actor, "registry.add_registeredmodel"):
        raise DomainError("permission_denied", "You are not allowed to create models.", status=403)
    _check_slug(name, "name")
    if task not in Task.values:
        raise DomainError("invalid", f"Unknown task {task!r}.", details={"task": Task.values})
    if risk_tier not in RiskTier.values:
        raise DomainError(
            "invalid", f"Unknown risk tier {risk_tier!r}.", details={"risk_tier": RiskTier.values}
        )
    if (
        team is not None
        and not isinstance(actor, SystemActor)
        and not actor.is_superuser
        and not actor.groups.filter(pk=team.pk).exists()
    ):
        raise DomainError(
            "invalid",
            "You can only assign a model to a team you belong to.",
            details={"team": team.name},
        )
    owner = owner or actor
    if isinstance(owner, SystemActor):
        raise DomainError("invalid", "A model needs a person as its owner.")
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name,
                task=task,
                risk_tier=risk_tier,
                description=description,
                team=team,
                tags=clean_tags(tags),
                owner=owner,
                created_by=owner if isinstance(actor, SystemActor) else actor,
            )
    except IntegrityError:
        raise conflict("already_exists", f"A model named {name!r} already exists.") from None
    _grant_role(model, owner, "owner")
    if team is not None:
        _grant_role(model, team, "maintainer")
    audit_record(
        actor=actor, action="registry.model.created", obj=model, after=snapshot(model, MODEL_FIELDS)
    )
    return model


@transaction.atomic
def registered_model_update(
    *, actor: AbstractBaseUser, model: RegisteredModel, authority: Any = None, **changes: Any
) -> RegisteredModel:
    """Edit description/tags (change right); risk tier, owner and team need manage.

    Every model-change gate (registry.gates) sees the change under the row lock
    and may refuse it: governance refuses a lowered risk tier unless
    ``authority`` is the approved change that allows it (see
    governance/risk_tiers.py). A refused change writes nothing.
    """
    editable = {"description", "tags", "risk_tier", "owner", "team"}
    unknown = set(changes) - editable
    if unknown:
        raise DomainError(
            "immutable",
            f"These fields cannot be changed: {sorted(unknown)}.",
            details={"fields": sorted(unknown)},
        )
    require(actor, "change", model)
    if {"risk_tier", "owner", "team"} & set(changes):
        require(actor, "manage", model)
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    before = snapshot(model, MODEL_FIELDS)
    if "tags" in changes:
        changes["tags"] = clean_tags(changes["tags"])
    if "risk_tier" in changes and changes["risk_tier"] not in RiskTier.values:
        raise DomainError("invalid", f"Unknown risk tier {changes['risk_tier']!r}.")
    check_model_change_gates(actor=actor, model=model, changes=changes, authority=authority)
    for field, value in changes.items():
        setattr(model, field, value)
    model.save()
    if "owner" in changes:
        _grant_role(model, model.owner, "owner")
    if changes.get("team") is not None:
        _grant_role(model, model.team, "maintainer")
    audit_record(
        actor=actor,
        action="registry.model.updated",
        obj=model,
        before=before,
        after=snapshot(model, MODEL_FIELDS),
    )
    return model


@transaction.atomic
def registered_model_delete(*, actor: AbstractBaseUser, model: RegisteredModel) -> None:
    """Delete a model that never had a ready version (the evidence of one is kept)."""
    require(actor, "manage", model)
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if model.versions.filter(status=VersionStatus.READY).exists():
        raise conflict(
            "model_has_ready_versions",
            "A model with ready versions cannot be deleted; its history is evidence.",
        )
    before = snapshot(model, MODEL_FIELDS)
    pk = model.pk
    model.aliases.all().delete()
    model.versions.update(parent=None)
    ModelVersion.objects.filter(registered_model=model).delete()
    try:
        # Another app's rows may still point at the model (an environment): the
        # refusal leaves this function's transaction, which undoes every delete above.
        with transaction.atomic():
            model.datasets.all().delete()
            model.delete()
    except ProtectedError as exc:
        holders = sorted({type(obj).__name__ for obj in exc.protected_objects})
        raise conflict(
            "model_in_use",
            f"{model.name} is still referenced by other rows ({', '.join(holders)}); "
            "remove those first.",
            referenced_by=holders,
        ) from None
    audit_record(
        actor=actor,
        action="registry.model.deleted",
        object_type="registry.registeredmodel",
        object_id=str(pk),
        object_repr=before["name"],
        before=before,
    )


@transaction.atomic
def registered_model_grant(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    role: str,
    user: AbstractBaseUser | None = None,
    group: Group | None = None,
) -> None:
    """Give a user or a group (a team) a role on a model."""
    if role not in ROLES:
        raise DomainError("invalid", f"Unknown role {role!r}.", details={"roles": sorted(ROLES)})
    if (user is None) == (group is None):
        raise DomainError("invalid", "Grant to exactly one user or one group.")
    require(actor, "manage", model)
    holder: Any = user or group
    _grant_role(model, holder, role)
    audit_record(
        actor=actor,
        action="registry.model.access_granted",
        obj=model,
        after={"role": role, "user": user and user.get_username(), "group": group and group.name},
    )


@transaction.atomic
def registered_model_revoke(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    user: AbstractBaseUser | None = None,
    group: Group | None = None,
) -> None:
    """Remove every right a user or group holds directly on a model."""
    require(actor, "manage", model)
    holder: Any = user or group
    if holder is None:
        raise DomainError("invalid", "Revoke from a user or a group.")
    if user is not None and user.pk == model.owner_id:
        raise DomainError("invalid", "The owner keeps their rights; change the owner first.")
    for codename in RegisteredModel.PERMISSION_ACTIONS.values():
        remove_perm(codename, holder, model)
    audit_record(
        actor=actor,
        action="registry.model.access_revoked",
        obj=model,
        before={"user": user and user.get_username(), "group": group and group.name},
    )


# --- datasets --------------------------------------------------------------


def dataset_upload(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    name: str,
    role: str,
    upload: IO[bytes],
    filename: str = "",
    description: str = "",
) -> Dataset:
    """Convert an uploaded CSV or Parquet file to Parquet and register it."""
    require(actor, "register", model)
    _check_slug(name, "name")
    upload.seek(0)
    head = upload.read(8)
    upload.seek(0)
    try:
        fmt = sniff_format(head, filename)
    except TableRejected as exc:
        raise DomainError("invalid_dataset", exc.reason) from None
    source_path = getattr(upload, "temporary_file_path", lambda: None)()
    with tempfile.TemporaryDirectory() as workdir:
        if source_path is None:
            source_path = os.path.join(workdir, "source")
            with open(source_path, "wb") as out:
                while chunk := upload.read(1024 * 1024):
                    out.write(chunk)
        parquet_path = os.path.join(workdir, "table.parquet")
        try:
            info = convert_to_parquet(
                source_path, fmt, parquet_path, max_columns=settings.MAX_DATASET_COLUMNS
            )
        except TableRejected as exc:
            raise DomainError("invalid_dataset", exc.reason) from None
        with open(source_path, "rb") as source:
            source_sha256, _ = sha256_of(source)
        with open(parquet_path, "rb") as table:
            key, digest, size = store_blob("datasets", table)

    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        latest = (
            Dataset.objects.filter(registered_model=model, name=name)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        )
        dataset = Dataset.objects.create(
            registered_model=model,
            name=name,
            version=(latest or 0) + 1,
            role=role,
            description=description,
            storage_key=key,
            sha256=digest,
            size_bytes=size,
            row_count=info.row_count,
            schema=info.schema,
            source_format=fmt,
            source_sha256=source_sha256,
            created_by=_person(actor),
        )
        audit_record(
            actor=actor,
            action="registry.dataset.uploaded",
            obj=dataset,
            after=snapshot(dataset, ("name", "version", "role", "sha256", "row_count", "schema")),
        )
        publish_event(
            "registry.dataset.uploaded",
            {
                "model": model.name,
                "dataset_id": dataset.pk,
                "name": dataset.name,
                "version": dataset.version,
                "role": dataset.role,
                "by_system": dataset.created_by_id is None,
            },
        )
    return dataset


# --- versions ----------------------------------------------------------------


def model_version_register(
    *,
    actor: AbstractBaseUser | SystemActor,
    model: RegisteredModel,
    artifact: IO[bytes],
    signature_inputs: list[dict[str, str]] | None = None,
    metrics: dict[str, float] | None = None,
    training_dataset: Dataset | None = None,
    target_column: str = "",
    parent_number: int | None = None,
    source_run_id: str = "",
    source_commit: str = "",
    description: str = "",
    tags: Iterable[str] | None = None,
    requested_by: AbstractBaseUser | None = None,
) -> ModelVersion:
    """Store the artifact under its digest and queue its validation.

    The version is ``pending`` until a worker has validated it; its number is
    taken under the model's row lock, so concurrent registrations never share
    one and a number is never reused.

    ``actor`` is the author: a user who uploads an artifact, or the
    ``SystemActor`` of the job that produced it (the version then has no
    ``created_by``). ``requested_by`` is who asked for that job; they must
    still hold the register right.
    """
    require(actor, "register", model)
    if requested_by is not None:
        require(requested_by, "register", model)
    tags = clean_tags(tags)
    if training_dataset is not None:
        if training_dataset.registered_model_id != model.pk:
            raise DomainError(
                "invalid",
                "The training dataset belongs to another model.",
                details={"training_dataset": training_dataset.pk},
            )
        if not target_column:
            raise DomainError(
                "invalid",
                "A training dataset needs its target column.",
                details={"target_column": "required"},
            )
    elif target_column:
        raise DomainError("invalid", "A target column needs a training dataset.")

    # Content-addressed and idempotent: storing before the transaction leaves at
    # worst an unreferenced blob if the transaction then fails.
    key, digest, size = store_blob("artifacts", artifact)
    if size == 0:
        raise DomainError("invalid_artifact", "The artifact file is empty.")

    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        parent = None
        if parent_number is not None:
            parent = ModelVersion.objects.filter(
                registered_model=model, number=parent_number
            ).first()
            if parent is None:
                raise DomainError(
                    "invalid",
                    f"The parent version {parent_number} does not exist.",
                    details={"parent": parent_number},
                )
        model.last_version_number += 1
        model.save(update_fields=["last_version_number", "updated_at"])
        version = ModelVersion.objects.create(
            registered_model=model,
            number=model.last_version_number,
            artifact_key=key,
            artifact_sha256=digest,
            artifact_size=size,
            signature={"inputs": signature_inputs} if signature_inputs else {},
            metrics=metrics or {},
            training_dataset=training_dataset,
            training_dataset_sha256=training_dataset.sha256 if training_dataset else "",
            target_column=target_column,
            parent=parent,
            source_run_id=source_run_id,
            source_commit=source_commit,
            created_by=_person(actor),
            requested_by=requested_by,
            description=description,
            tags=tags,
        )
        job = RegistrationJob.objects.create(version=version)
        audit_record(
            actor=actor,
            action="registry.version.registered",
            obj=version,
            after=snapshot(version, VERSION_FIELDS),
        )
        job_enqueue(job)
    return version


def _transition(version: ModelVersion, to: str, reason: str = "") -> None:
    if to not in VERSION_TRANSITIONS[version.status]:
        raise conflict(
            "invalid_transition",
            f"A {version.status} version cannot become {to}.",
            current=version.status,
            requested=to,
        )
    version.status = to
    version.status_reason = reason
    if to == VersionStatus.READY:
        version.ready_at = timezone.now()


def _inspect(version: ModelVersion) -> tuple[str, Any]:
    """Run every artifact check; returns (status, report-or-reason)."""
    dataset = version.training_dataset
    schema = dataset.schema if dataset else None
    declared = version.signature.get("inputs") or None
    try:
        sample = None
        if dataset is not None:
            with cached_blob_path(dataset.storage_key) as table_path:
                sample = read_head(table_path, 20)
        with cached_blob_path(version.artifact_key) as path:
            report = inspect_artifact(
                path,
                task=version.registered_model.task,
                declared_inputs=declared,
                dataset_schema=schema,
                target=version.target_column,
                sample=sample,
            )
    except ArtifactRejected as exc:
        return VersionStatus.FAILED, exc.reason
    return VersionStatus.READY, report


def model_version_validate(*, job: RegistrationJob) -> ModelVersion:
    """The worker's half of registration: check the artifact, then ready or failed.

    Idempotent: a version that is no longer pending is left as it is. Errors
    other than a rejected artifact (storage down, ...) propagate so that the
    task retries.
    """
    version = ModelVersion.objects.select_related("registered_model", "training_dataset").get(
        pk=job.version_id
    )
    if version.status != VersionStatus.PENDING:
        with transaction.atomic():
            job_finish(job, log=f"version already {version.status}")
        return version
    outcome, result = _inspect(version)

    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if version.status != VersionStatus.PENDING:
            job_finish(job, log=f"version already {version.status}")
            return version
        before = snapshot(version, ("status", "status_reason"))
        if outcome == VersionStatus.READY:
            version.signature = result.signature
            version.hyperparameters = result.hyperparameters
            version.estimator = result.estimator_class
            _transition(version, VersionStatus.READY)
            log = f"ready: {result.estimator_class}; types {len(result.types)} allowed"
        else:
            _transition(version, VersionStatus.FAILED, result)
            log = f"failed: {result}"
        version.save()
        job_finish(job, log=log)
        audit_record(
            actor=job_actor(job),
            action=f"registry.version.{version.status}",
            obj=version,
            before=before,
            after=snapshot(
                version, ("status", "status_reason", "signature", "hyperparameters", "estimator")
            ),
        )
        publish_event(
            f"registry.version.{version.status}",
            {
                "model": version.registered_model.name,
                "version": version.number,
                "version_id": version.pk,
                "reason": version.status_reason,
            },
        )
    return version


def job_actor(job: RegistrationJob) -> SystemActor:
    return SystemActor(f"registry.validate_version#{job.pk}")


def model_version_registration_gave_up(*, job: RegistrationJob) -> None:
    """Failure handler: the validation job could not run; the version fails."""
    version = ModelVersion.objects.select_for_update().get(pk=job.version_id)
    if version.status != VersionStatus.PENDING:
        return
    before = snapshot(version, ("status", "status_reason"))
    _transition(version, VersionStatus.FAILED, f"Validation could not run: {job.error}")
    version.save()
    audit_record(
        actor=job_actor(job),
        action="registry.version.failed",
        obj=version,
        before=before,
        after=snapshot(version, ("status", "status_reason")),
    )


@transaction.atomic
def model_version_update(
    *, actor: AbstractBaseUser, version: ModelVersion, **changes: Any
) -> ModelVersion:
    """Only the description and tags of a version can change, ever."""
    frozen = sorted(set(changes) - {"description", "tags"})
    if frozen:
        raise DomainError(
            "immutable",
            "A version's artifact, signature and lineage never change; "
            f"only description and tags can be edited (refused: {frozen}).",
            details={"fields": frozen},
        )
    require(actor, "change", version)
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    before = snapshot(version, ("description", "tags"))
    if "description" in changes:
        version.description = str(changes["description"])
    if "tags" in changes:
        version.tags = clean_tags(changes["tags"])
    version.save(update_fields=["description", "tags", "updated_at"])
    _bump_resolution(version.registered_model_id)
    audit_record(
        actor=actor,
        action="registry.version.updated",
        obj=version,
        before=before,
        after=snapshot(version, ("description", "tags")),
    )
    return version


# --- aliases -----------------------------------------------------------------


def _alias_action(protected: bool) -> str:
    return "deploy" if protected else "register"


def _require_admin_to_drop_protection(
    actor: AbstractBaseUser, model: RegisteredModel, name: str
) -> None:
    """Only an administrator takes a protection away (the flag, or a flagged alias).

    Otherwise the model's owner (manage + deploy) could unprotect an alias, or
    delete it and let anyone with ``register`` recreate it unprotected, and then
    point it at a version that was never approved: a weaker gate of their choosing.
    Deleting a name in ALWAYS_PROTECTED_ALIASES stays a deploy-right action: the
    setting keeps the name protected when it comes back.
    """
    if isinstance(actor, SystemActor) or getattr(actor, "is_superuser", False):
        return
    raise DomainError(
        "protection_admin_only",
        f"Only an administrator removes the protection of {model.name}@{name} "
        "(unprotecting or deleting a protected alias).",
        details={"alias": name, "requirement": "administrator"},
        status=403,
    )


@transaction.atomic
def alias_set(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    name: str,
    version_number: int,
    protected: bool | None = None,
    required_action: str = "register",
) -> Alias:
    """Point ``model@name`` at a ready version, creating the alias if needed.

    Unprotected aliases need the register right (or ``required_action``, which
    a service that moves an alias as part of a stricter operation names: the
    lifecycle's deployments ask for deploy); protected ones (production) need
    deploy, and must pass every gate other apps registered (governance's
    approval gate). Guards registered by other apps run first (see gates.py).
    """
    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9-]{0,63}$", name):
        raise DomainError(
            "invalid",
            "An alias is 1-64 lowercase letters, digits or hyphens.",
            details={"alias": str(name)[:80]},
        )
    # no_key: see lifecycle.deployments._locked (FK checks of rows under the model pass).
    model = RegisteredModel.objects.select_for_update(no_key=True).get(pk=model.pk)
    check_alias_guards(actor=actor, model=model, alias_name=name)
    alias = Alias.objects.select_for_update().filter(registered_model=model, name=name).first()
    currently_protected = bool(alias and alias.protected)
    will_be_protected = currently_protected if protected is None else protected
    if name in settings.ALWAYS_PROTECTED_ALIASES:
        if protected is False:
            raise DomainError(
                "always_protected",
                f"{model.name}@{name} is always protected (ALWAYS_PROTECTED_ALIASES).",
                details={"alias": name, "requirement": "protected"},
            )
        will_be_protected = True
    protected_move = currently_protected or will_be_protected
    require(actor, "deploy" if protected_move else required_action, model)
    if currently_protected and not will_be_protected:
        require(actor, "manage", model)
        _require_admin_to_drop_protection(actor, model, name)
    version = ModelVersion.objects.filter(registered_model=model, number=version_number).first()
    if version is None:
        raise DomainError(
            "not_found", f"Version {version_number} of {model.name} does not exist.", status=404
        )
    if version.status != VersionStatus.READY:
        raise conflict(
            "version_not_ready",
            f"Version {version_number} is {version.status}; only a ready version can be aliased.",
            version_status=version.status,
        )
    if will_be_protected:
        check_alias_gates(actor=actor, alias_name=name, version=version)
    before = snapshot(alias, ("version", "protected")) if alias else None
    if alias is None:
        alias = Alias(registered_model=model, name=name)
    alias.version = version
    alias.protected = will_be_protected
    alias.updated_by = None if isinstance(actor, SystemActor) else actor
    alias.save()
    _bump_resolution(model.pk)
    audit_record(
        actor=actor,
        action="registry.alias.set",
        obj=alias,
        before=before,
        after={"version": version.number, "version_id": version.pk, "protected": alias.protected},
    )
    publish_event(
        "registry.alias.set",
        {
            "model": model.name,
            "alias": name,
            "version": version.number,
            "version_id": version.pk,
            "protected": alias.protected,
            "previous_version_id": before["version"] if before else None,
            "actor": str(getattr(actor, "username", actor)),
        },
    )
    return alias


@transaction.atomic
def alias_delete(*, actor: AbstractBaseUser, model: RegisteredModel, name: str) -> None:
    # Lock order as in alias_set: the model row first, then the alias.
    # no_key: see lifecycle.deployments._locked (FK checks of rows under the model pass).
    model = RegisteredModel.objects.select_for_update(no_key=True).get(pk=model.pk)
    check_alias_guards(actor=actor, model=model, alias_name=name)
    alias = Alias.objects.select_for_update().filter(registered_model=model, name=name).first()
    if alias is None:
        raise DomainError("not_found", f"{model.name}@{name} does not exist.", status=404)
    require(actor, _alias_action(alias.protected), model)
    if alias.protected and name not in settings.ALWAYS_PROTECTED_ALIASES:
        _require_admin_to_drop_protection(actor, model, name)
    before = {"version": alias.version.number, "protected": alias.protected}
    alias_pk, alias_repr = alias.pk, str(alias)
    alias.delete()
    _bump_resolution(model.pk)
    audit_record(
        actor=actor,
        action="registry.alias.deleted",
        object_type="registry.alias",
        object_id=str(alias_pk),
        object_repr=alias_repr,
        before=before,
    )
    publish_event(
        "registry.alias.deleted",
        {
            "model": model.name,
            "alias": name,
            "version": before["version"],
            "protected": before["protected"],
            "actor": str(getattr(actor, "username", actor)),
        },
    )
