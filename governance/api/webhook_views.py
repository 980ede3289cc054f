"""Outgoing webhooks and their delivery log (administrators only)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from governance import selectors, webhooks
from governance.api.webhook_serializers import WebhookDeliverySerializer, WebhookSerializer
from governance.models import Webhook


class WebhookViewSet(viewsets.GenericViewSet):
    serializer_class = WebhookSerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        return selectors.webhook_list(user=self.request.user)

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
        webhook = selectors.webhook_get(user=request.user, pk=pk)
        webhooks.webhook_delete(actor=request.user, webhook=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    def deliveries(self, request: Request, pk: str) -> Response:
        webhook = selectors.webhook_get(user=request.user, pk=pk)
        page = self.paginate_queryset(webhook.deliveries.all())
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
