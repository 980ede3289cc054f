from __future__ import annotations

from rest_framework import serializers

from governance.models import ApprovalPolicy


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApprovalPolicy
        fields = [
            "id",
            "risk_tier",
            "version",
            "required_roles",
            "required_evidence",
            "thresholds",
            "validity_days",
            "independent_validator",
            "tier_lowering_role",
            "sensitive_inputs_acknowledged_by",
            "evidence_override_by",
            "description",
            "created_at",
        ]
