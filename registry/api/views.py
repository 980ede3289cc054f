"""REST API for pipelines. Views parse and render; services decide and write."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.authentication import Rider
from common.errors import DomainError
from common.idempotency import idempotent
from common.storage import open_blob
from registry import selectors, services
from registry.api import serializers as s
from registry.cache import resolution_get, resolution_put
from registry.filtersets import DatasetFilterSet, ModelVersionFilterSet, RegisteredModelFilterSet
from registry.models import Dataset, ModelVersion, RegisteredModel

User = get_user_model()


def _user_named(username: str) -> Any:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise DomainError("invalid", f"No active user {username!r}.", details={"owner": username})
    return user


def _group_named(name: str | None) -> Group | None:
    if name is None:
        return None
    group = Group.objects.filter(name=name).first()
    if group is None:
        raise DomainError("invalid", f"No team {name!r}.", details={"team": name})
    return group


def blob_response(key: str, sha256: str, filename: str, content_type: str) -> FileResponse:
    """Stream a stored blob with its digest in headers, for the client to verify."""
    response = FileResponse(
        open_blob(key), as_attachment=True, filename=filename, content_type=content_type
    )
    response["X-Checksum-SHA256"] = sha256
    response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"
    return response


class RegisteredModelViewSet(viewsets.GenericViewSet):
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    filterset_class = RegisteredModelFilterSet
    ordering_fields = ["name", "created_at", "updated_at", "risk_tier"]
    ordering = ["name"]
    serializer_class = s.RegisteredModelSerializer
    queryset = RegisteredModel.objects.none()

    def get_queryset(self) -> Any:
        return selectors.model_list(user=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=s.RegisteredModelCreateSerializer, responses={201: s.RegisteredModelSerializer}
    )
    def create(self, request: Request) -> Response:
        data = self._valid(s.RegisteredModelCreateSerializer, request.data)
        model = services.registered_model_create(
            actor=request.user,
            name=data["name"],
            task=data["task"],
            risk_tier=data["risk_tier"],
            description=data["description"],
            team=_group_named(data["team"]),
            tags=data["tags"],
        )
        return Response(self.get_serializer(model).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, name: str) -> Response:
        return Response(self.get_serializer(selectors.model_get(user=request.user, name=name)).data)

    @extend_schema(request=s.RegisteredModelUpdateSerializer, responses=s.RegisteredModelSerializer)
    def partial_update(self, request: Request, name: str) -> Response:
        model = selectors.model_get(user=request.user, name=name)
        changes = self._valid(s.RegisteredModelUpdateSerializer, request.data, strict=True)
        if "owner" in changes:
            changes["owner"] = _user_named(changes["owner"])
        if "team" in changes:
            changes["team"] = _group_named(changes["team"])
        model = services.registered_model_update(actor=request.user, model=model, **changes)
        return Response(self.get_serializer(model).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, name: str) -> Response:
        model = selectors.model_get(user=request.user, name=name)
        services.registered_model_delete(actor=request.user, model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _valid(serializer_class: Any, data: Any, strict: bool = False) -> dict[str, Any]:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        if strict and hasattr(data, "keys"):
            unknown = set(data.keys()) - set(serializer.fields)
            if unknown:
                raise DomainError(
                    "immutable",
                    f"These fields cannot be changed: {sorted(unknown)}.",
                    details={"fields": sorted(unknown)},
                )
        return dict(serializer.validated_data)


class ModelVersionViewSet(viewsets.GenericViewSet):
    lookup_field = "number"
    lookup_value_regex = "[0-9]+"
    filterset_class = ModelVersionFilterSet
    ordering_fields = ["number", "created_at"]
    ordering = ["-number"]
    serializer_class = s.VersionSerializer
    queryset = ModelVersion.objects.none()

    def _model(self) -> RegisteredModel:
        return selectors.model_get(user=self.request.user, name=self.kwargs["model_name"])

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        return selectors.version_list(user=self.request.user, model=self._model())

    def list(self, request: Request, model_name: str) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": s.VersionRegisterSerializer},
        responses={202: s.VersionRegisteredSerializer},
        description=(
            "Register a version: `artifact` is a skops file, `metadata` a JSON object "
            "(signature, metrics, training_dataset, target_column, parent, source, description, "
            "tags). The version is `pending` until a worker has validated it. `warnings` lists "
            "what the registrant should know, e.g. `duplicate_artifact` when the file is "
            "byte-identical to an earlier version's."
        ),
    )
    @idempotent
    def create(self, request: Request, model_name: str) -> Response:
        model = self._model()
        serializer = s.VersionRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        meta = serializer.validated_data.get("metadata") or {}
        dataset = None
        if meta.get("training_dataset") is not None:
            dataset = selectors.dataset_get(user=request.user, pk=meta["training_dataset"])
        source = meta.get("source") or {}
        version = services.model_version_register(
            actor=request.user,
            model=model,
            artifact=serializer.validated_data["artifact"],
            signature_inputs=[dict(c) for c in meta["signature"]["inputs"]]
            if meta.get("signature")
            else None,
            metrics=meta.get("metrics") or {},
            training_dataset=dataset,
            target_column=meta.get("target_column", ""),
            parent_number=meta.get("parent"),
            source_run_id=source.get("run_id", ""),
            source_commit=source.get("commit", ""),
            description=meta.get("description", ""),
            tags=meta.get("tags") or [],
        )
        version = selectors.version_get(user=request.user, model=model, number=version.number)
        body = s.VersionRegisteredSerializer(version, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    def retrieve(self, request: Request, model_name: str, number: int) -> Response:
        version = selectors.version_get(user=request.user, model=self._model(), number=number)
        return Response(self.get_serializer(version).data)

    @extend_schema(request=s.VersionUpdateSerializer, responses=s.VersionSerializer)
    def partial_update(self, request: Request, model_name: str, number: int) -> Response:
        model = self._model()
        version = selectors.version_get(user=request.user, model=model, number=number)
        if not isinstance(request.data, dict):
            raise DomainError("invalid", "The body must be a JSON object.")
        extra = set(request.data) - {"description", "tags"}
        serializer = s.VersionUpdateSerializer(data=request.data)
        if not extra:
            serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data) if not extra else dict(request.data)
        services.model_version_update(actor=request.user, version=version, **changes)
        version = selectors.version_get(user=request.user, model=model, number=number)
        return Response(self.get_serializer(version).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="artifact")
    def artifact(self, request: Request, model_name: str, number: int) -> FileResponse:
        version = selectors.version_get(user=request.user, model=self._model(), number=number)
        return blob_response(
            version.artifact_key,
            version.artifact_sha256,
            f"{version.registered_model.name}-v{version.number}.skops",
            "application/octet-stream",
        )


class DatasetViewSet(viewsets.GenericViewSet):
    filterset_class = DatasetFilterSet
    ordering_fields = ["created_at", "name", "version"]
    ordering = ["-created_at"]
    serializer_class = s.DatasetSerializer
    queryset = Dataset.objects.none()

    def get_queryset(self) -> Any:
        return selectors.dataset_list(user=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": s.DatasetUploadSerializer},
        responses={201: s.DatasetSerializer},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        serializer = s.DatasetUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = selectors.model_get(user=request.user, name=data["model"])
        dataset = services.dataset_upload(
            actor=request.user,
            model=model,
            name=data["name"],
            role=data["role"],
            upload=data["file"],
            filename=data["file"].name or "",
            description=data["description"],
        )
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(selectors.dataset_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={(200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> FileResponse:
        dataset = selectors.dataset_get(user=request.user, pk=pk)
        return blob_response(
            dataset.storage_key,
            dataset.sha256,
            f"{dataset.registered_model.name}-{dataset.name}-v{dataset.version}.parquet",
            "application/vnd.apache.parquet",
        )


class AliasListView(APIView):
    @extend_schema(responses=s.AliasSerializer(many=True))
    def get(self, request: Request, model_name: str) -> Response:
        model = selectors.model_get(user=request.user, name=model_name)
        aliases = selectors.alias_list(user=request.user, model=model)
        return Response(s.AliasSerializer(aliases, many=True).data)


class JSONOnlyNegotiation(DefaultContentNegotiation):
    """The resolution endpoint answers JSON whatever the Accept header says
    (request bodies are still parsed by their content type)."""

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


class AliasView(APIView):
    """The serving hot path: one SQL statement per resolution once cached.

    The token check, the caller's view permission and the model's resolution
    generation are read together (``auth_rider``); the JSON body is cached
    rendered, per generation (registry/cache.py).
    """

    content_negotiation_class = JSONOnlyNegotiation

    def auth_rider(self, request: Request, model_name: str = "", **kwargs: Any) -> Rider | None:
        if request.method != "GET":
            return None
        return selectors.resolution_rider(model_name=model_name)

    @extend_schema(
        responses={200: s.AliasResolveSerializer},
        description="Resolve `model@alias` to its version, with the artifact's download URL.",
    )
    def get(self, request: Request, model_name: str, alias: str) -> HttpResponse:
        model_id, generation = selectors.resolution_header(
            user=request.user, model_name=model_name, rider=getattr(request, "auth_rider", None)
        )
        key = (model_id, model_name, generation, alias, request.get_host(), request.is_secure())
        body = resolution_get(key)
        if body is None:
            version = selectors.alias_resolve(user=request.user, model_name=model_name, alias=alias)
            serialized = s.VersionSerializer(version, context={"request": request}).data
            body = JSONRenderer().render({"alias": alias, "version": serialized})
            resolution_put(key, body)
        return HttpResponse(body, content_type="application/json")

    @extend_schema(request=s.AliasSetSerializer, responses=s.AliasSerializer)
    def put(self, request: Request, model_name: str, alias: str) -> Response:
        model = selectors.model_get(user=request.user, name=model_name)
        serializer = s.AliasSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.alias_set(
            actor=request.user,
            model=model,
            name=alias,
            version_number=serializer.validated_data["version"],
            protected=serializer.validated_data["protected"],
        )
        return Response(s.AliasSerializer(result).data)

    @extend_schema(responses={204: OpenApiResponse(description="Deleted")})
    def delete(self, request: Request, model_name: str, alias: str) -> Response:
        model = selectors.model_get(user=request.user, name=model_name)
        services.alias_delete(actor=request.user, model=model, name=alias)
        return Response(status=status.HTTP_204_NO_CONTENT)
