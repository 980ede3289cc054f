from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.fairness_audits import MAX_BOOTSTRAP, MAX_SENSITIVE_COLUMNS
from governance.models import FairnessAudit, ModelCard

JOB_FIELDS = ["status", "error", "queued_at", "started_at", "finished_at", "attempts"]


class FairnessAuditSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    dataset = serializers.SerializerMethodField()
    sensitive_features = serializers.ListField(source="sensitive_columns", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, default=None
    )

    class Meta:
        model = FairnessAudit
        fields = [
            "id",
            "model",
            "version",
            *JOB_FIELDS,
            "dataset",
            "target_column",
            "sensitive_features",
            "thresholds",
            "min_group_size",
            "bootstrap",
            "random_state",
            "requested_by",
            "passed",
            "report",
            "sha256",
        ]

    def get_dataset(self, obj: FairnessAudit) -> dict[str, Any]:
        return {
            "id": obj.dataset_id,
            "name": obj.dataset.name,
            "version": obj.dataset.version,
            "sha256": obj.dataset_sha256,
        }


class FairnessAuditRequestSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    target_column = serializers.CharField(max_length=200)
    sensitive_features = serializers.ListField(
        child=serializers.CharField(max_length=200),
        min_length=1,
        max_length=MAX_SENSITIVE_COLUMNS,
    )
    bootstrap = serializers.IntegerField(min_value=0, max_value=MAX_BOOTSTRAP, default=0)
    random_state = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)


class ModelCardNarrativeSerializer(serializers.Serializer):
    intended_use = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    out_of_scope_use = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    limitations = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    ethical_considerations = serializers.CharField(
        required=False, allow_blank=True, max_length=20_000
    )
    caveats = serializers.CharField(required=False, allow_blank=True, max_length=20_000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(ModelCard.NARRATIVE_FIELDS))
        if unknown:
            raise serializers.ValidationError({f: "unknown field" for f in unknown})
        if not attrs:
            raise serializers.ValidationError("Give at least one narrative field.")
        return attrs
