"""Review and sign-off endpoints under a version."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from governance import reviews, selectors
from governance.api.review_serializers import (
    ReviewSerializer,
    SignOffRequestSerializer,
    SignOffSerializer,
)
from governance.models import SignOff
from registry.api.scoping import VersionScoped


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
        return selectors.signoff_list(user=self.request.user, version=self._version())

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
            acknowledge_sensitive_inputs=data["acknowledge_sensitive_inputs"],
            override_justification=data["override_justification"],
        )
        return Response(self.get_serializer(signoff).data, status=status.HTTP_201_CREATED)
