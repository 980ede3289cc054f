"""Evidence endpoints under a version: fairness audits, the model card.

A failed audit's mitigation is a retraining run: its endpoints are lifecycle's
(``lifecycle.api.views.FairnessMitigationViewSet``), at the URLs they always had.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import fairness_audits, model_cards, selectors
from governance.api.evidence_serializers import (
    FairnessAuditRequestSerializer,
    FairnessAuditSerializer,
    ModelCardNarrativeSerializer,
)
from governance.models import FairnessAudit
from registry import selectors as registry_selectors
from registry.api.scoping import VersionJobs, VersionScoped


class FairnessAuditViewSet(VersionJobs):
    serializer_class = FairnessAuditSerializer
    queryset = FairnessAudit.objects.none()
    list_selector = staticmethod(selectors.audit_list)
    get_selector = staticmethod(selectors.audit_get)

    @extend_schema(request=FairnessAuditRequestSerializer, responses={202: FairnessAuditSerializer})
    def create(self, request: Request, model_name: str, number: int) -> Response:
        version = self._version()
        body = FairnessAuditRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        dataset = registry_selectors.dataset_get(user=request.user, pk=data["dataset"])
        job = fairness_audits.fairness_audit_start(
            actor=request.user,
            version=version,
            dataset=dataset,
            target_column=data["target_column"],
            sensitive_columns=data["sensitive_features"],
            bootstrap=data["bootstrap"],
            random_state=data["random_state"],
        )
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)


class MarkdownRenderer(BaseRenderer):
    media_type = "text/markdown"
    format = "md"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        return data if isinstance(data, str) else JSONRenderer().render(data)


class PrintableHTMLRenderer(MarkdownRenderer):
    media_type = "text/html"
    format = "html"


class ModelCardView(VersionScoped, APIView):
    """The version's model card: ``?format=json`` (default), ``md`` or ``html``.

    PATCH edits the narrative fields (change right) and files the card as evidence.
    """

    renderer_classes = [JSONRenderer, MarkdownRenderer, PrintableHTMLRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "md", "html"]),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/markdown"): OpenApiTypes.STR,
            (200, "text/html"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, model_name: str, number: int) -> Any:
        version = self._version()
        card = model_cards.card_build(version)
        fmt = request.accepted_renderer.format
        if fmt in ("md", "html"):
            response = HttpResponse(
                model_cards.card_render(card, fmt),
                content_type=f"{request.accepted_renderer.media_type}; charset=utf-8",
            )
            name = f"{version.registered_model.name}-v{version.number}-model-card.{fmt}"
            if fmt == "md":
                response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        return Response(model_cards.card_escaped(card))

    @extend_schema(request=ModelCardNarrativeSerializer, responses={200: OpenApiTypes.OBJECT})
    def patch(self, request: Request, model_name: str, number: int) -> Response:
        version = self._version()
        body = ModelCardNarrativeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model_cards.model_card_update(
            actor=request.user, version=version, fields=body.validated_data
        )
        return Response(model_cards.card_escaped(model_cards.card_build(version)))
