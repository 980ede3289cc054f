"""Reference profiles: a version's drift baseline, built once from its training
dataset, stored as blobs and cached per process by digest.

The features profile judges data drift; the outputs profile (the model's own
predictions, scores and the target on the same rows) judges prediction and
label drift (see ``monitoring.outputs``).
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
from django.db import transaction

from common.audit import audit_record
from common.evidence import DRIFT_BASELINE, EvidenceItem, evidence_produced
from common.storage import cached_blob_path, open_blob, store_blob
from monitoring import data_policy, drift, outputs, privacy
from monitoring.models import ReferenceProfile
from registry.artifacts import load_estimator
from registry.models import ModelVersion

_profile_cache: dict[str, drift.Profile] = {}


def profile_load(
    profile: ReferenceProfile, rules: privacy.ColumnRules | None = None
) -> drift.Profile:
    """The stored features profile (cached per process by digest: blobs never change),
    seen through the model's column rules (its hashed columns hashed like the batches;
    ``rules`` defaults to the rules in force now)."""
    stored = _load_profile_blob(profile.storage_key, profile.sha256)
    if rules is None:
        model_id = ModelVersion.objects.values_list("registered_model_id", flat=True).get(
            pk=profile.version_id
        )
        rules = data_policy.rules_for(model_id=model_id)
    return privacy.profile_view(stored, rules)


def _load_profile_blob(key: str, digest: str) -> drift.Profile:
    cached = _profile_cache.get(digest)
    if cached is None:
        with open_blob(key) as fh:
            cached = drift.Profile.load(io.BytesIO(fh.read()))
        if len(_profile_cache) > 32:
            _profile_cache.clear()
        _profile_cache[digest] = cached
    return cached


def reference_profile_ensure(*, actor: Any, version: ModelVersion) -> ReferenceProfile | None:
    """Build the version's drift baseline once, from its training dataset.

    None when the version has no training dataset (drift cannot be judged).
    Files a DRIFT_BASELINE evidence item in the same transaction. The baseline holds
    two profiles: the features, and the model's outputs on the same rows with the
    target (prediction and label drift; see ``monitoring.outputs``).
    """
    existing = ReferenceProfile.objects.filter(version=version).first()
    if existing is not None or version.training_dataset_id is None:
        return existing
    dataset = version.training_dataset
    features = [f for f in version.feature_names if f in dataset.column_names]
    target = version.target_column if version.target_column in dataset.column_names else None
    with cached_blob_path(dataset.storage_key) as path:
        frame = pq.read_table(path, columns=features + ([target] if target else [])).to_pandas()
    profile = drift.build_profile(frame[features])
    key, digest = _store_profile(profile)
    outputs_key, outputs_digest, outputs_columns, outputs_note = _build_outputs(
        version, frame, features, target
    )
    del frame
    with transaction.atomic():
        ModelVersion.objects.select_for_update().get(pk=version.pk)
        existing = ReferenceProfile.objects.filter(version=version).first()
        if existing is not None:  # built concurrently by another request
            return existing
        row = ReferenceProfile.objects.create(
            version=version,
            dataset=dataset,
            storage_key=key,
            sha256=digest,
            fingerprint=profile.fingerprint,
            row_count=profile.rows,
            columns=list(profile.columns),
            outputs_storage_key=outputs_key,
            outputs_sha256=outputs_digest,
            outputs_columns=outputs_columns,
            outputs_note=outputs_note,
        )
        audit_record(
            actor=actor,
            action="monitoring.profile.build",
            obj=row,
            after={
                "version": version.pk,
                "dataset": dataset.pk,
                "sha256": digest,
                "outputs_sha256": outputs_digest,
                "outputs_note": outputs_note,
            },
        )
        evidence_produced(
            actor=actor,
            item=EvidenceItem(
                version_id=version.pk,
                kind=DRIFT_BASELINE,
                sha256=digest,
                passed=True,
                summary=(
                    f"Drift baseline from {dataset} ({profile.rows} rows, "
                    f"{len(profile.columns)} features"
                    + (f"; outputs: {', '.join(outputs_columns)}" if outputs_columns else "")
                    + ")."
                ),
                source=f"monitoring.referenceprofile:{row.pk}",
                details={
                    "fingerprint": profile.fingerprint,
                    "columns": list(profile.columns),
                    "outputs_columns": outputs_columns,
                    "outputs_sha256": outputs_digest,
                    "outputs_note": outputs_note,
                },
            ),
        )
    return row


def _store_profile(profile: drift.Profile) -> tuple[str, str]:
    buffer = io.BytesIO()
    profile.save(buffer)
    buffer.seek(0)
    key, digest, _size = store_blob("profiles", buffer)
    return key, digest


def _build_outputs(
    version: ModelVersion, frame: Any, features: list[str], target: str | None
) -> tuple[str, str, list[str], str]:
    """(blob key, digest, columns, note) of the outputs profile; a note instead when the
    model's outputs on its training rows cannot be computed (the features profile
    does not depend on it)."""
    if target is None:
        return "", "", [], f"the training dataset has no target column {version.target_column!r}"
    if len(features) != len(version.feature_names):
        return "", "", [], "the training dataset lacks some of the model's inputs"
    with cached_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    try:
        reference = outputs.reference_outputs(
            estimator, frame[features], frame[target], task=version.registered_model.task
        )
    except outputs.OutputsUnavailable as exc:
        return "", "", [], str(exc)
    profile = drift.build_profile(reference)
    key, digest = _store_profile(profile)
    return key, digest, list(profile.columns), ""


def outputs_profile_load(profile: ReferenceProfile) -> drift.Profile | None:
    """The outputs profile (prediction, probability, label), None when there is none."""
    if not profile.outputs_storage_key:
        return None
    return _load_profile_blob(profile.outputs_storage_key, profile.outputs_sha256)


def predicted_profile(outputs_profile: drift.Profile) -> drift.Profile:
    """The outputs profile without the label: what prediction batches are summarized on."""
    return drift.Profile(
        columns={
            name: column
            for name, column in outputs_profile.columns.items()
            if name in outputs.PREDICTED
        },
        bins=outputs_profile.bins,
        rows=outputs_profile.rows,
    )
