"""Reads that carry rules. Every query starts from ``visible_to``."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.db import connections, router
from django.db.models import Count, Prefetch, Q, QuerySet

from common.authentication import Rider
from common.errors import not_found
from common.permissions import (
    get_visible,
    grant_condition_params,
    grant_condition_sql,
    user_can,
)
from registry.choices import VersionStatus
from registry.models import Alias, Dataset, ModelVersion, RegisteredModel


def model_list(*, user: Any) -> QuerySet[RegisteredModel]:
    return (
        RegisteredModel.objects.visible_to(user, "view")
        .select_related("owner", "team")
        .annotate(
            version_count=Count("versions", distinct=True),
            ready_count=Count(
                "versions", filter=Q(versions__status=VersionStatus.READY), distinct=True
            ),
        )
        .order_by("name")
    )


def model_get(*, user: Any, name: str) -> RegisteredModel:
    return get_visible(
        RegisteredModel.objects.select_related("owner", "team"), user, f"Model {name!r}", name=name
    )


def version_list(*, user: Any, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.visible_to(user, "view")
        .filter(registered_model=model)
        .select_related(
            "registered_model", "created_by", "requested_by", "parent", "training_dataset"
        )
        .prefetch_related(Prefetch("aliases", queryset=Alias.objects.order_by("name")))
    )


def version_get(*, user: Any, model: RegisteredModel, number: Any) -> ModelVersion:
    return get_visible(
        ModelVersion.objects.select_related(
            "registered_model",
            "created_by",
            "requested_by",
            "parent",
            "training_dataset",
            "registration_job",
        ).prefetch_related("aliases"),
        user,
        f"Version {number} of {model.name}",
        registered_model=model,
        number=number,
    )


def version_lineage(*, version: ModelVersion, limit: int = 20) -> list[ModelVersion]:
    """The chain of ancestors, nearest first (bounded, in case of long histories)."""
    chain, current = [], version.parent
    while current is not None and len(chain) < limit:
        chain.append(current)
        current = current.parent
    return chain


def version_duplicates(*, version: ModelVersion) -> list[ModelVersion]:
    """Earlier versions of the same model whose artifact is byte-identical (same SHA-256).

    A second upload of the same file still takes a number (numbers are never
    reused); this is what the registration answer and the version page warn about.
    """
    return list(
        ModelVersion.objects.filter(
            registered_model_id=version.registered_model_id,
            artifact_sha256=version.artifact_sha256,
            number__lt=version.number,
        )
        .only("number", "status")
        .order_by("number")
    )


def version_warnings(*, version: ModelVersion) -> list[dict[str, Any]]:
    """What a person or a pipeline should know about a version before using it, in the
    API's error shape (``code``, ``message``, ``details``) without being an error."""
    warnings: list[dict[str, Any]] = []
    same = version_duplicates(version=version)
    if same:
        listed = ", ".join(f"v{v.number} ({v.status})" for v in same)
        warnings.append(
            {
                "code": "duplicate_artifact",
                "message": (
                    f"The artifact of v{version.number} is byte-identical to {listed} of "
                    f"{version.registered_model.name} (SHA-256 {version.artifact_sha256[:12]}…): "
                    "the same model file was registered again."
                ),
                "details": {
                    "sha256": version.artifact_sha256,
                    "versions": [v.number for v in same],
                },
            }
        )
    return warnings


def version_split(
    *, user: Any, model: RegisteredModel
) -> tuple[QuerySet[ModelVersion], QuerySet[ModelVersion]]:
    """The model's versions for a page: (ready and pending, failed), newest first.

    A failed upload keeps its number for good; pages show such versions apart
    (collapsed) so that they do not crowd the versions a person works with.
    """
    versions = version_list(user=user, model=model).order_by("-number")
    return (
        versions.exclude(status=VersionStatus.FAILED),
        versions.filter(status=VersionStatus.FAILED),
    )


def alias_list(*, user: Any, model: RegisteredModel) -> QuerySet[Alias]:
    return (
        Alias.objects.visible_to(user, "view")
        .filter(registered_model=model)
        .select_related("version", "updated_by")
    )


@functools.cache
def _resolution_header_sql() -> str:
    table = RegisteredModel._meta.db_table
    return (
        f"SELECT m.id, m.resolution_generation, {grant_condition_sql(RegisteredModel, 'm.id')} "  # noqa: S608
        f"FROM {table} m WHERE m.name = %s"
    )


def _judge_header(user: Any, model_name: str, row: Any) -> tuple[int, int]:
    if row is None or row[0] is None or not (row[2] or user.is_superuser):
        raise not_found(f"Model {model_name!r}")
    return row[0], row[1]


def resolution_header(*, user: Any, model_name: str, rider: Any = None) -> tuple[int, int]:
    """(model id, resolution generation) if ``user`` may view the model, else 404.

    One constant statement per request: the permission check and the cache
    generation together (see registry/cache.py). With ``rider``, the values
    ``resolution_rider`` had the token statement read, none at all.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        raise not_found(f"Model {model_name!r}")
    if rider is not None:
        return _judge_header(user, model_name, rider)
    with connections[router.db_for_read(RegisteredModel)].cursor() as cursor:
        cursor.execute(
            _resolution_header_sql(),
            [*grant_condition_params(user, RegisteredModel, "view"), model_name],
        )
        row = cursor.fetchone()
    return _judge_header(user, model_name, row)


@functools.cache
def _resolution_rider_sql() -> tuple[str, str]:
    grant = grant_condition_sql(RegisteredModel, "m.id", user_sql="u.id")
    joins = f"LEFT JOIN {RegisteredModel._meta.db_table} m ON m.name = %s"
    return f"m.id, m.resolution_generation, {grant}", joins


def resolution_rider(*, model_name: str) -> Rider:
    """The resolution header as a ``Rider`` of the API token statement.

    Alias resolution is the serving hot path: this lets authentication and the
    permission + generation read share one round trip (registry/cache.py).
    """
    columns, joins = _resolution_rider_sql()
    params = (*grant_condition_params(None, RegisteredModel, "view"), model_name)
    return Rider(columns=columns, joins=joins, params=params)


def alias_resolve(*, user: Any, model_name: str, alias: str) -> ModelVersion:
    """``model@alias`` → the version it points at; invisible and missing both 404."""
    version = (
        ModelVersion.objects.filter(registered_model__name=model_name, aliases__name=alias)
        .select_related(
            "registered_model", "created_by", "requested_by", "parent", "training_dataset"
        )
        .prefetch_related("aliases")
        .order_by()
        .first()
    )
    if version is None or not user_can(user, "view", version):
        raise not_found(f"{model_name}@{alias}")
    return version


def dataset_list(*, user: Any) -> QuerySet[Dataset]:
    return Dataset.objects.visible_to(user, "view").select_related("registered_model", "created_by")


def dataset_get(*, user: Any, pk: Any) -> Dataset:
    return get_visible(
        Dataset.objects.select_related("registered_model", "created_by"),
        user,
        f"Dataset {pk}",
        pk=pk,
    )


CHAMPION_ALIASES = ("production", "champion")


def model_contacts(*, model: RegisteredModel) -> set[str]:
    """Email addresses of the model's owner and its team's active members (notices)."""
    recipients = {model.owner.email} if model.owner.email else set()
    if model.team is not None:
        recipients |= {u.email for u in model.team.user_set.filter(is_active=True) if u.email}
    return recipients


def champion_for(*, model: RegisteredModel) -> ModelVersion | None:
    """The version behind ``model@production``, else ``model@champion``, else None."""
    aliases = {
        alias.name: alias.version
        for alias in Alias.objects.filter(
            registered_model=model, name__in=CHAMPION_ALIASES
        ).select_related("version")
    }
    return next((aliases[name] for name in CHAMPION_ALIASES if name in aliases), None)


def dataset_schema_problems(
    version: ModelVersion, dataset: Dataset, *, extra: Iterable[str] = ()
) -> list[dict[str, str]]:
    """Why ``dataset`` cannot be scored by ``version`` (empty: it can).

    Every input of the version's signature must be a column of the same type
    family (numeric / text) and every ``extra`` column (target, sensitive
    features) must exist. Checked against the stored schema, without reading rows.
    """
    from registry.artifacts import dtype_family

    columns = {c["name"]: c["dtype"] for c in dataset.schema or []}
    problems = []
    for spec in version.signature.get("inputs", []):
        name, dtype = spec["name"], spec["dtype"]
        if name not in columns:
            problems.append(
                {"column": name, "message": f"the signature's input {name!r} is missing"}
            )
        elif dtype_family(dtype) != dtype_family(columns[name]):
            problems.append(
                {
                    "column": name,
                    "message": f"{name!r} is {columns[name]} in the dataset but {dtype} "
                    "in the signature",
                }
            )
    for name in extra:
        if name not in columns:
            problems.append({"column": name, "message": f"the column {name!r} is missing"})
    return problems
