from __future__ import annotations

from rest_framework import serializers

from lifecycle.models import Deployment, Environment, Evaluation, Strategy


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
            "target",
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
        ]


class DeploymentRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    strategy = serializers.ChoiceField(choices=Strategy.choices, default=Strategy.DIRECT)


class RollbackRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class _ErrorBody(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """The one error shape: ``{"error": {"code", "message", "details"}}``."""

    error = _ErrorBody()
