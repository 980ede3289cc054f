from __future__ import annotations

from rest_framework import serializers

from common.audit import HASHED_FIELDS
from common.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [*HASHED_FIELDS, "hash"]  # what the chain covers, and the link itself
