from __future__ import annotations

from rest_framework import serializers

from governance.models import RiskTierChange
from registry.choices import RiskTier


class RiskTierChangeSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.CharField(
        source="decided_by.username", read_only=True, allow_null=True
    )

    class Meta:
        model = RiskTierChange
        fields = [
            "id",
            "model",
            "from_tier",
            "to_tier",
            "reason",
            "approver_role",
            "state",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_comment",
        ]


class RiskTierChangeRequestSerializer(serializers.Serializer):
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices)
    reason = serializers.CharField(max_length=4000)


class RiskTierDecisionSerializer(serializers.Serializer):
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
