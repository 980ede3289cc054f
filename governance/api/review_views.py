"""Review, sign-off, policy, audit-event and webhook endpoints."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from common.errors import DomainError
from common.models import AuditEvent
from common.pagination import SeekPagination
from common.permissions import can_globally
from governance import reviews, selectors, webhooks
from governance.api.evidence_views import VersionScoped
from governance.api.review_serializers import (
    AuditEventSerializer,
    PolicySerializer,
    ReviewSerializer,
    SignOffRequestSerializer,
    SignOffSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)
from governance.models import ApprovalPolicy, SignOff, Webhook


class ReviewViewSet(VersionScoped, viewsets.GenericViewSet):
    serializer_class = ReviewSerializer

    def retrieve(self, request: Request, model_name: str, number: int) -> Response:
        review = selectors.review_get_or_draft(version=self._version())
        return Response(self.get_serializer(review).data)

    @extend_schema(request=None, responses={201: ReviewSerializer})
    def create(self, request: Request, model_name: str, number: int) -> Response:
        review = reviews.review_submit(actor=request.user, version=self._version())
        return Response(self.get_serializer(review).data, status=status.HTTP_201_CREATED)


class SignOffViewSet(VersionScoped, viewsets.GenericViewSet):
    serializer_class = SignOffSerializer
    queryset = SignOff.objects.none()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return SignOff.objects.none()
        return SignOff.objects.filter(review__version=self._version()).select_related("signer")

    def list(self, request: Request, model_name: str, number: int) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=SignOffRequestSerializer, responses={201: SignOffSerializer})
    def create(self, request: Request, model_name: str, number: int) -> Response:
        """Sign through the API: only for tiers in GOVERNANCE_API_SIGNOFF_TIERS."""
        version = self._version()
        body = SignOffRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        signoff = reviews.signoff_create(
            actor=request.user,
            version=version,
            password=data["password"],
            decision=data["decision"],
            meaning=data["meaning"],
            comment=data["comment"],
            role=data.get("role"),
            via_api=True,
        )
        return Response(self.get_serializer(signoff).data, status=status.HTTP_201_CREATED)


class PolicyViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PolicySerializer
    queryset = ApprovalPolicy.objects.all()
    filterset_fields = ["risk_tier"]


class AuditEventFilterSet(django_filters.FilterSet):
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "object_type", "object_id", "request_id"]


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first; seek pagination (no COUNT on a big table)."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = SeekPagination
    lookup_field = "seq"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        if not can_globally(self.request.user, "common.view_auditevent"):
            raise DomainError("permission_denied", "The audit trail is for auditors.", status=403)
        return AuditEvent.objects.all()


class WebhookViewSet(viewsets.GenericViewSet):
    serializer_class = WebhookSerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        if not self.request.user.is_superuser:
            raise DomainError(
                "permission_denied", "Only administrators manage webhooks.", status=403
            )
        return Webhook.objects.filter(active=True)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request: Request) -> Response:
        body = WebhookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        webhook = webhooks.webhook_create(
            actor=request.user,
            name=body.validated_data["name"],
            url=body.validated_data["url"],
            events=body.validated_data.get("events") or ["*"],
        )
        return Response(self.get_serializer(webhook).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        webhook = self.get_queryset().filter(pk=pk).first()
        if webhook is None:
            raise DomainError("not_found", "Webhook not found.", status=404)
        webhooks.webhook_delete(actor=request.user, webhook=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    def deliveries(self, request: Request, pk: str) -> Response:
        webhook = self.get_queryset().filter(pk=pk).first()
        if webhook is None:
            raise DomainError("not_found", "Webhook not found.", status=404)
        page = self.paginate_queryset(webhook.deliveries.all())
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
