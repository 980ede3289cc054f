"""Risk-tier changes of a model: request a lowering, list, approve, reject, withdraw.

Lowering through ``PATCH /api/v1/models/{name}/`` answers ``409 governed_change``
naming this endpoint; raising stays immediate there.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from governance import risk_tiers
from governance.api.risk_tier_serializers import (
    RiskTierChangeRequestSerializer,
    RiskTierChangeSerializer,
    RiskTierDecisionSerializer,
)
from governance.models import RiskTierChange
from registry import selectors as registry_selectors
from registry.models import RegisteredModel


class RiskTierChangeViewSet(viewsets.GenericViewSet):
    serializer_class = RiskTierChangeSerializer
    queryset = RiskTierChange.objects.none()

    def _model(self) -> RegisteredModel:
        return registry_selectors.model_get(user=self.request.user, name=self.kwargs["model_name"])

    def _change(self, pk: Any) -> RiskTierChange:
        return risk_tiers.risk_tier_change_get(user=self.request.user, model=self._model(), pk=pk)

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return RiskTierChange.objects.none()
        return risk_tiers.risk_tier_change_list(user=self.request.user, model=self._model())

    def list(self, request: Request, model_name: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, model_name: str, pk: str) -> Response:
        return Response(self.get_serializer(self._change(pk)).data)

    @extend_schema(
        request=RiskTierChangeRequestSerializer, responses={201: RiskTierChangeSerializer}
    )
    def create(self, request: Request, model_name: str) -> Response:
        """Request a lowering (manage right); an approver of the policy's role decides."""
        body = RiskTierChangeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = risk_tiers.risk_tier_change_request(
            actor=request.user,
            model=self._model(),
            risk_tier=body.validated_data["risk_tier"],
            reason=body.validated_data["reason"],
        )
        return Response(self.get_serializer(change).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RiskTierDecisionSerializer, responses=RiskTierChangeSerializer)
    def approve(self, request: Request, model_name: str, pk: str) -> Response:
        """Approve with the password (the tier changes at once); API only for tiers in
        GOVERNANCE_API_SIGNOFF_TIERS, else ``403 ui_only``."""
        return self._decide(request, pk, risk_tiers.risk_tier_change_approve)

    @extend_schema(request=RiskTierDecisionSerializer, responses=RiskTierChangeSerializer)
    def reject(self, request: Request, model_name: str, pk: str) -> Response:
        return self._decide(request, pk, risk_tiers.risk_tier_change_reject)

    @extend_schema(request=None, responses=RiskTierChangeSerializer)
    def withdraw(self, request: Request, model_name: str, pk: str) -> Response:
        change = risk_tiers.risk_tier_change_withdraw(actor=request.user, change=self._change(pk))
        return Response(self.get_serializer(change).data)

    def _decide(self, request: Request, pk: str, service: Any) -> Response:
        change = self._change(pk)
        body = RiskTierDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        change = service(
            actor=request.user,
            change=change,
            password=body.validated_data["password"],
            comment=body.validated_data["comment"],
            via_api=True,
        )
        return Response(self.get_serializer(change).data)
