from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.api.policy_serializers import PolicySerializer
from governance.choices import SignOffDecision, SignOffMeaning, SignOffRole
from governance.models import Review, SignOff
from governance.selectors import review_checklist


class SignOffSerializer(serializers.ModelSerializer):
    signer = serializers.CharField(source="signer.username", read_only=True)

    class Meta:
        model = SignOff
        fields = [
            "id",
            "signer",
            "role",
            "decision",
            "meaning",
            "comment",
            "signed_at",
            "evidence_sha256",
            "acknowledged_sensitive_inputs",
            "overridden_requirements",
            "override_justification",
            "valid",
            "invalidated_reason",
        ]


class ChecklistItemSerializer(serializers.Serializer):
    requirement = serializers.CharField()
    met = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["passed", "failed", "missing", "overridden"])
    why = serializers.CharField()
    rules = serializers.ListField(child=serializers.CharField(), required=False)
    link = serializers.CharField(required=False, allow_blank=True)
    sha256 = serializers.CharField(required=False, allow_null=True)


class ReviewSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.registered_model.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    policy = PolicySerializer(read_only=True, allow_null=True)
    checklist = serializers.SerializerMethodField()
    signoffs = serializers.SerializerMethodField()
    expired = serializers.SerializerMethodField()

    class Meta:
        model = Review
        fields = [
            "model",
            "version",
            "state",
            "policy",
            "submitted_at",
            "decided_at",
            "approved_until",
            "expired",
            "checklist",
            "signoffs",
        ]

    def get_checklist(self, obj: Review) -> list[dict[str, Any]]:
        return ChecklistItemSerializer(review_checklist(review=obj), many=True).data

    def get_signoffs(self, obj: Review) -> list[dict[str, Any]]:
        if not obj.pk:
            return []
        return SignOffSerializer(obj.signoffs.select_related("signer"), many=True).data

    def get_expired(self, obj: Review) -> bool:
        return obj.state == "approved" and obj.is_expired()


class SignOffRequestSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=SignOffRole.choices, required=False)
    decision = serializers.ChoiceField(choices=SignOffDecision.choices)
    meaning = serializers.ChoiceField(choices=SignOffMeaning.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    acknowledge_sensitive_inputs = serializers.BooleanField(required=False, default=False)
    override_justification = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=4000,
        help_text=(
            "Approving for deployment while required evidence failed or is missing: the "
            "written justification of the override (only the policy's evidence_override_by)."
        ),
    )
    password = serializers.CharField(write_only=True)
