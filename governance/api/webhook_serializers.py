from __future__ import annotations

from rest_framework import serializers

from governance.models import Webhook, WebhookDelivery


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "name", "url", "events", "active", "secret", "created_at"]
        read_only_fields = ["id", "active", "secret", "created_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "status",
            "attempts",
            "response_status",
            "error",
            "queued_at",
            "finished_at",
        ]
