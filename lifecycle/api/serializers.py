from __future__ import annotations

from rest_framework import serializers

from lifecycle.models import Evaluation


class EvaluationSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    dataset = serializers.SerializerMethodField()
    champion = serializers.IntegerField(source="champion.number", read_only=True, default=None)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)

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


class EvaluationRequestSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    target_column = serializers.CharField(max_length=200)
