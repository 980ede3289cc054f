"""Approval policy endpoints (read-only: administrators add versions in the admin)."""

from __future__ import annotations

from rest_framework import viewsets

from governance.api.policy_serializers import PolicySerializer
from governance.models import ApprovalPolicy


class PolicyViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PolicySerializer
    queryset = ApprovalPolicy.objects.all()
    filterset_fields = ["risk_tier"]
