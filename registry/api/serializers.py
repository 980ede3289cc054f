from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.parsers import json_loads
from registry import selectors
from registry.artifacts import SIGNATURE_DTYPES
from registry.choices import DatasetRole, RiskTier, Task
from registry.models import Alias, Dataset, ModelVersion, RegisteredModel


def absolute(request: Any, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class RegisteredModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    team = serializers.CharField(source="team.name", read_only=True, default=None)
    version_count = serializers.IntegerField(read_only=True, default=None)
    url = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "description",
            "task",
            "risk_tier",
            "owner",
            "team",
            "tags",
            "version_count",
            "created_at",
            "updated_at",
            "url",
        ]

    def get_url(self, obj: RegisteredModel) -> str:
        return absolute(self.context.get("request"), reverse("api:model-detail", args=[obj.name]))


class RegisteredModelCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    task = serializers.ChoiceField(choices=Task.choices)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=10000
    )
    team = serializers.CharField(required=False, allow_null=True, default=None)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list
    )


class RegisteredModelUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    owner = serializers.CharField(required=False)
    team = serializers.CharField(required=False, allow_null=True)


class SignatureColumnSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    dtype = serializers.ChoiceField(choices=sorted(SIGNATURE_DTYPES))


class SignatureSerializer(serializers.Serializer):
    inputs = SignatureColumnSerializer(
        many=True, min_length=1, max_length=settings.MAX_DATASET_COLUMNS
    )


class SourceSerializer(serializers.Serializer):
    run_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    commit = serializers.RegexField(
        r"^[0-9a-fA-F]{7,64}$",
        required=False,
        allow_blank=True,
        default="",
        error_messages={"invalid": "A commit is 7-64 hexadecimal characters."},
    )


class MetricsField(serializers.DictField):
    def to_internal_value(self, data: Any) -> dict[str, float]:
        value = super().to_internal_value(data)
        if len(value) > 200:
            raise serializers.ValidationError("At most 200 metrics.")
        for key, number in value.items():
            if (
                not isinstance(number, int | float)
                or isinstance(number, bool)
                or not math.isfinite(number)
            ):
                raise serializers.ValidationError(f"Metric {key!r} must be a finite number.")
        return value


class VersionMetadataSerializer(serializers.Serializer):
    signature = SignatureSerializer(required=False)
    metrics = MetricsField(required=False, default=dict)
    training_dataset = serializers.IntegerField(required=False, allow_null=True, default=None)
    target_column = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200
    )
    parent = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    source = SourceSerializer(required=False)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=10000
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list
    )
    hyperparameters = serializers.DictField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({"unknown_fields": sorted(unknown)})
        return attrs


@extend_schema_field(
    {"type": "string", "description": "A JSON object: see VersionMetadata (sent as a form field)."}
)
class MetadataJSONField(serializers.Field):
    """A multipart field holding a JSON document, validated by VersionMetadataSerializer."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "read"):
            data = data.read(settings.MAX_METADATA_BYTES + 1)
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        if not isinstance(data, str):
            raise serializers.ValidationError("metadata must be a JSON object.")
        if len(data) > settings.MAX_METADATA_BYTES:
            raise serializers.ValidationError("metadata is larger than 256 KiB.")
        try:
            parsed = json_loads(data) if data.strip() else {}
        except ValueError as exc:  # malformed, NaN/Infinity, or nested too deep
            raise serializers.ValidationError(f"metadata is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise serializers.ValidationError("metadata must be a JSON object.")
        inner = VersionMetadataSerializer(data=parsed)
        inner.is_valid(raise_exception=True)
        return inner.validated_data

    def to_representation(self, value: Any) -> Any:
        return value


class VersionRegisterSerializer(serializers.Serializer):
    artifact = serializers.FileField(allow_empty_file=False)
    metadata = MetadataJSONField(required=False)


class VersionUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)


class VersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    artifact = serializers.SerializerMethodField()
    training_dataset = serializers.SerializerMethodField()
    parent = serializers.IntegerField(source="parent.number", read_only=True, default=None)
    source = serializers.SerializerMethodField()
    # None for a version produced by a ModelGate job, which has no human author.
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, default=None
    )
    aliases = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "number",
            "status",
            "status_reason",
            "artifact",
            "signature",
            "hyperparameters",
            "estimator",
            "metrics",
            "training_dataset",
            "target_column",
            "parent",
            "source",
            "created_by",
            "requested_by",
            "description",
            "tags",
            "aliases",
            "created_at",
            "ready_at",
            "url",
        ]

    def get_artifact(self, obj: ModelVersion) -> dict[str, Any]:
        path = reverse("api:version-artifact", args=[obj.registered_model.name, obj.number])
        return {
            "sha256": obj.artifact_sha256,
            "size": obj.artifact_size,
            "download_url": absolute(self.context.get("request"), path),
        }

    def get_training_dataset(self, obj: ModelVersion) -> dict[str, Any] | None:
        if obj.training_dataset_id is None:
            return None
        ds = obj.training_dataset
        return {
            "id": ds.pk,
            "name": ds.name,
            "version": ds.version,
            "sha256": obj.training_dataset_sha256,
        }

    def get_source(self, obj: ModelVersion) -> dict[str, str]:
        return {"run_id": obj.source_run_id, "commit": obj.source_commit}

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return sorted(alias.name for alias in obj.aliases.all())

    def get_url(self, obj: ModelVersion) -> str:
        path = reverse("api:version-detail", args=[obj.registered_model.name, obj.number])
        return absolute(self.context.get("request"), path)


class DatasetSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "model",
            "name",
            "version",
            "role",
            "description",
            "sha256",
            "size_bytes",
            "row_count",
            "schema",
            "source_format",
            "source_sha256",
            "created_by",
            "created_at",
            "download_url",
        ]

    def get_download_url(self, obj: Dataset) -> str:
        return absolute(self.context.get("request"), reverse("api:dataset-download", args=[obj.pk]))


class DatasetUploadSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=DatasetRole.choices)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=10000
    )
    file = serializers.FileField(allow_empty_file=False)


class AliasSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    updated_by = serializers.CharField(source="updated_by.username", read_only=True)

    class Meta:
        model = Alias
        fields = ["model", "name", "version", "protected", "updated_by", "updated_at"]


class VersionWarningSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class VersionRegisteredSerializer(VersionSerializer):
    """The registration answer: the version, and what its registrant should know
    (``duplicate_artifact``: the same file as an earlier version)."""

    warnings = serializers.SerializerMethodField()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "warnings"]

    @extend_schema_field(VersionWarningSerializer(many=True))
    def get_warnings(self, obj: ModelVersion) -> list[dict[str, Any]]:
        return selectors.version_warnings(version=obj)


class AliasSetSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    protected = serializers.BooleanField(required=False, allow_null=True, default=None)


class AliasResolveSerializer(serializers.Serializer):
    alias = serializers.CharField()
    version = VersionSerializer()
