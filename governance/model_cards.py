"""Model cards: generated from the registry and the evidence, plus narrative fields.

The generated half (model, version, lineage, training data and its digest,
evaluation, fairness, risk tier, owners) is rebuilt on every read, so it never
goes stale; the narrative half (intended use, out-of-scope use, limitations,
ethical considerations, caveats) is a ``ModelCard`` row per version, edited by
people with the change right. Saving the narrative files the whole card as
``model_card`` evidence (complete when every required field is filled).

Other apps add sections with ``register_card_section`` (lifecycle adds the
evaluation): governance does not import them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from common.audit import audit_record, canonical_bytes, snapshot, to_plain_json
from common.errors import DomainError
from common.evidence import MODEL_CARD, EvidenceItem, evidence_produced
from common.permissions import require
from governance.models import Evidence, ModelCard
from governance.selectors import (
    latest_audit,
    model_card_source,
    sensitive_inputs,
    sensitive_inputs_notice,
)
from registry.models import ModelVersion

SCHEMA_VERSION = 1
MAX_FIELD_CHARS = 20_000
CardSection = Callable[[ModelVersion], dict[str, Any] | None]
_sections: dict[str, CardSection] = {}


def register_card_section(name: str, provider: CardSection) -> None:
    _sections[name] = provider


def narrative_of(version: ModelVersion) -> tuple[ModelCard | None, dict[str, str]]:
    """The version's card row and narrative; a version without one starts from its
    nearest ancestor's (``selectors.model_card_source``)."""
    card, source = model_card_source(version=version)
    return card, {f: getattr(source, f, "") if source else "" for f in ModelCard.NARRATIVE_FIELDS}


def inherited_card_evidence(version: ModelVersion) -> Evidence | None:
    """The ``model_card`` item a version without a card of its own holds by starting
    from an ancestor's narrative (unsaved; None without such an ancestor).

    Its digest is that of the card built for this version now, as saving it
    would file it; complete when the inherited narrative fills every required field.
    """
    card, source = model_card_source(version=version)
    if card is not None or source is None:
        return None
    full = card_build(version)
    full.pop("narrative_updated_at", None)
    missing = source.missing_fields
    origin = f"v{source.version.number}"
    return Evidence(
        version=version,
        kind=MODEL_CARD,
        sha256=card_digest(full),
        passed=not missing,
        summary=(
            f"complete (narrative inherited from {origin})"
            if not missing
            else f"incomplete (narrative inherited from {origin}): " + ", ".join(missing) + " empty"
        ),
        source=f"governance.modelcard:{source.pk}",
        details={"missing_fields": missing, "inherited_from": source.version.number},
        produced_at=source.updated_at,
    )


def _fairness_section(version: ModelVersion) -> dict[str, Any] | None:
    audit = latest_audit(version=version)
    if audit is None:
        return None
    report = audit.report
    return {
        "audit": audit.pk,
        "sha256": audit.sha256,
        "status": report["status"],
        "passed": audit.passed,
        "dataset": f"{audit.dataset.name} v{audit.dataset.version}",
        "sensitive_features": audit.sensitive_columns,
        "thresholds": audit.thresholds,
        "min_group_size": audit.min_group_size,
        "rules": [
            {k: r.get(k) for k in ("scope", "rule", "value", "threshold", "status")}
            for r in report["rules"]
        ],
        "groups": [
            {
                "scope": scope["name"],
                "group": group["group"],
                "count": group["count"],
                "selection_rate": group["metrics"].get("selection_rate"),
                "excluded": group["excluded"],
            }
            for scope in report["scopes"]
            for group in scope["groups"]
        ],
    }


def card_build(version: ModelVersion) -> dict[str, Any]:
    """The whole card as plain data (what the JSON export returns)."""
    model = version.registered_model
    dataset = version.training_dataset
    card, narrative = narrative_of(version)
    sections = {name: provider(version) for name, provider in sorted(_sections.items())}
    sensitive = sensitive_inputs(version=version)
    return to_plain_json(
        {
            "schema_version": SCHEMA_VERSION,
            "model": {
                "name": model.name,
                "description": model.description,
                "task": model.task,
                "risk_tier": model.risk_tier,
                "owner": model.owner.get_username() if model.owner_id else None,
                "team": model.team.name if model.team_id else None,
                "tags": model.tags,
            },
            "version": {
                "number": version.number,
                "status": version.status,
                "description": version.description,
                "estimator": version.estimator,
                "artifact_sha256": version.artifact_sha256,
                "hyperparameters": version.hyperparameters,
                "signature": version.signature,
                "metrics": version.metrics,
                "parent": version.parent.number if version.parent_id else None,
                "source": {"run_id": version.source_run_id, "commit": version.source_commit},
                "created_by": version.created_by.get_username() if version.created_by_id else None,
                "registered_by": version.author_display,
                "requested_by": (
                    version.requested_by.get_username() if version.requested_by_id else None
                ),
                "created_at": version.created_at,
                # The model's sensitive attributes that this version reads to predict.
                "sensitive_inputs": sensitive,
                "sensitive_inputs_notice": (
                    sensitive_inputs_notice(version=version, inputs=sensitive)
                    if sensitive
                    else None
                ),
            },
            "training_data": (
                {
                    "name": dataset.name,
                    "version": dataset.version,
                    "sha256": version.training_dataset_sha256,
                    "rows": dataset.row_count,
                    "target": version.target_column,
                }
                if dataset
                else None
            ),
            "narrative": narrative,
            "narrative_complete": all(narrative[f].strip() for f in ModelCard.REQUIRED_FIELDS),
            "narrative_updated_by": (
                card.updated_by.get_username() if card and card.updated_by_id else None
            ),
            "narrative_updated_at": card.updated_at if card else None,
            "fairness": _fairness_section(version),
            **sections,
        }
    )


def card_digest(card: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(card)).hexdigest()


def card_escaped(value: Any) -> Any:
    """The card with ``&``, ``<`` and ``>`` escaped in every string (keys too).

    For the Markdown and JSON exports, whose text (narrative fields, names,
    descriptions) would otherwise reach a downstream renderer as raw HTML; the
    printable HTML export is escaped by its template instead.
    """
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, dict):
        return {card_escaped(k): card_escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [card_escaped(v) for v in value]
    return value


def card_render(card: dict[str, Any], fmt: str) -> str:
    """Markdown (HTML escaped, see ``card_escaped``) or printable HTML from the plain card."""
    template = {"md": "governance/model_card.md", "html": "governance/model_card_print.html"}[fmt]
    if fmt == "md":
        card = card_escaped(card)
    return render_to_string(template, {"card": card, "generated_at": timezone.now()})


def model_card_update(*, actor: Any, version: ModelVersion, fields: dict[str, Any]) -> ModelCard:
    """Save narrative fields and file the resulting card as evidence."""
    require(actor, "change", version)
    unknown = sorted(set(fields) - set(ModelCard.NARRATIVE_FIELDS))
    if unknown:
        raise DomainError(
            "invalid",
            f"Unknown model card field(s) {unknown}.",
            details={f: "unknown field" for f in unknown},
        )
    bad = {
        f: f"must be text of at most {MAX_FIELD_CHARS} characters"
        for f, v in fields.items()
        if not isinstance(v, str) or len(v) > MAX_FIELD_CHARS
    }
    if bad:
        raise DomainError("invalid", "Some model card fields are invalid.", details=bad)
    with transaction.atomic():
        # The version row is the lock: two editors of one card queue here.
        ModelVersion.objects.select_for_update().get(pk=version.pk)
        card, narrative = narrative_of(version)
        if card is None:
            card = ModelCard(version=version, **narrative)
        before = snapshot(card, ModelCard.NARRATIVE_FIELDS) if card.pk else None
        for name, value in fields.items():
            setattr(card, name, value.strip())
        card.updated_by = actor
        card.save()
        full = card_build(version)
        full.pop("narrative_updated_at", None)
        card.sha256 = card_digest(full)
        ModelCard.objects.filter(pk=card.pk).update(sha256=card.sha256)
        audit_record(
            actor=actor,
            action="governance.model_card.updated",
            obj=card,
            before=before,
            after={**snapshot(card, ModelCard.NARRATIVE_FIELDS), "sha256": card.sha256},
        )
        missing = card.missing_fields
        evidence_produced(
            actor=actor,
            item=EvidenceItem(
                version_id=version.pk,
                kind=MODEL_CARD,
                sha256=card.sha256,
                passed=not missing,
                summary=(
                    "complete" if not missing else "incomplete: " + ", ".join(missing) + " empty"
                ),
                source=f"governance.modelcard:{card.pk}",
                details={"missing_fields": missing},
            ),
        )
    return card
