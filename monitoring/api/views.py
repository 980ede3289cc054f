"""Monitoring REST API. Views parse and render; services decide and write."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from common.errors import DomainError
from common.idempotency import idempotent
from monitoring import data_policy, selectors, services
from monitoring.api import serializers as s
from monitoring.filtersets import AlertFilterSet
from monitoring.ingest import BatchRejected, read_file, read_json_columns
from monitoring.models import Alert, CheckRun, LabelBatch, Monitor, PredictionBatch
from registry import selectors as registry_selectors

MAX_JSON_ROWS = 10_000


def _batch_table(request: Request) -> tuple[str, pa.Table]:
    """Read the posted batch (JSON columns or an uploaded file) into an Arrow table."""
    data = request.data
    if not hasattr(data, "get"):
        raise DomainError("invalid_batch", "The body must be a JSON object.")
    batch_id = data.get("batch_id")
    if not isinstance(batch_id, str) or not batch_id.strip():
        raise DomainError("invalid_batch", "A batch needs a batch_id.", details={"problems": []})
    max_columns = settings.MAX_DATASET_COLUMNS
    try:
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            head = upload.read(4)
            upload.seek(0)
            path = getattr(upload, "temporary_file_path", None)
            if path is None:
                raise DomainError("invalid_batch", "The upload could not be stored.")
            return batch_id, read_file(path(), head, max_columns=max_columns)
        if "columns" not in data:
            raise BatchRejected('Send "columns" (JSON) or a "file" (CSV or Parquet).')
        return batch_id, read_json_columns(
            data["columns"], max_columns=max_columns, max_rows=MAX_JSON_ROWS
        )
    except BatchRejected as exc:
        raise services.rejected(exc) from None


BATCH_DOC = (
    'JSON: `{"batch_id": "...", "columns": {"request_id": [...], "timestamp": [...], '
    '<features>, "prediction": [...], "score": [...]}}` (at most 10,000 rows), or a multipart '
    "form with `batch_id` and `file` (CSV or Parquet). The whole batch is validated against the "
    "version's signature and refused with the first problems; a repeated `batch_id` with the same "
    "content answers 200 with the stored batch and counts nothing twice."
)


class PredictionBatchView(GenericAPIView):
    serializer_class = s.PredictionBatchSerializer
    queryset = PredictionBatch.objects.none()

    def _version(self, model_name: str, number: int) -> Any:
        model = registry_selectors.model_get(user=self.request.user, name=model_name)
        return registry_selectors.version_get(user=self.request.user, model=model, number=number)

    @extend_schema(
        operation_id="prediction_batches_list", responses=s.PredictionBatchSerializer(many=True)
    )
    def get(self, request: Request, model_name: str, number: int) -> Response:
        version = self._version(model_name, number)
        qs = (
            PredictionBatch.objects.visible_to(request.user, "view")
            .filter(version=version)
            .select_related("version")
            .order_by("-first_at", "-pk")
        )
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request={
            "application/json": s.BatchUploadSerializer,
            "multipart/form-data": s.BatchUploadSerializer,
        },
        responses={201: s.PredictionBatchSerializer, 200: s.PredictionBatchSerializer},
        description=BATCH_DOC,
    )
    @idempotent
    def post(self, request: Request, model_name: str, number: int) -> Response:
        version = self._version(model_name, number)
        batch_id, table = _batch_table(request)
        batch, created = services.prediction_batch_ingest(
            actor=request.user, version=version, batch_id=batch_id, table=table
        )
        return Response(
            self.get_serializer(batch).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class LabelBatchView(GenericAPIView):
    serializer_class = s.LabelBatchSerializer
    queryset = LabelBatch.objects.none()

    @extend_schema(
        request={
            "application/json": s.BatchUploadSerializer,
            "multipart/form-data": s.BatchUploadSerializer,
        },
        responses={201: s.LabelBatchSerializer, 200: s.LabelBatchSerializer},
        description=(
            "Ground truth for earlier predictions: columns `request_id` and `label`, as JSON "
            "columns or a CSV/Parquet file, joined with predictions by request id."
        ),
    )
    @idempotent
    def post(self, request: Request, model_name: str) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        batch_id, table = _batch_table(request)
        batch, created = services.label_batch_ingest(
            actor=request.user, model=model, batch_id=batch_id, table=table
        )
        return Response(
            self.get_serializer(batch).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MonitorListView(GenericAPIView):
    serializer_class = s.MonitorSerializer
    queryset = Monitor.objects.none()

    @extend_schema(operation_id="monitors_list", responses=s.MonitorSerializer(many=True))
    def get(self, request: Request, model_name: str) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        page = self.paginate_queryset(selectors.monitor_list(user=request.user, model=model))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=s.MonitorCreateSerializer, responses={201: s.MonitorSerializer})
    def post(self, request: Request, model_name: str) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        body = s.MonitorCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        ref = data.pop("version", None)
        version = (
            None
            if ref is None
            else selectors.version_by_ref(user=request.user, model=model, ref=ref)
        )
        monitor = services.monitor_create(actor=request.user, model=model, version=version, **data)
        return Response(self.get_serializer(monitor).data, status=status.HTTP_201_CREATED)


class MonitorDetailView(GenericAPIView):
    serializer_class = s.MonitorSerializer
    queryset = Monitor.objects.none()

    @extend_schema(operation_id="monitors_retrieve")
    def get(self, request: Request, model_name: str, pk: int) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        monitor = selectors.monitor_get(user=request.user, model=model, pk=pk)
        return Response(self.get_serializer(monitor).data)

    @extend_schema(
        operation_id="monitors_partial_update",
        request=s.MonitorUpdateSerializer,
        responses=s.MonitorSerializer,
    )
    def patch(self, request: Request, model_name: str, pk: int) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        monitor = selectors.monitor_get(user=request.user, model=model, pk=pk)
        if not isinstance(request.data, dict):
            raise DomainError("invalid", "The body must be a JSON object.")
        unknown = sorted(set(request.data) - set(s.MonitorUpdateSerializer().fields))
        if unknown:
            raise DomainError(
                "invalid",
                f"These monitor fields cannot be changed: {unknown}.",
                details={"fields": unknown},
            )
        body = s.MonitorUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        if "version" in changes:
            changes["version"] = selectors.version_by_ref(
                user=request.user, model=model, ref=changes["version"]
            )
        monitor = services.monitor_update(actor=request.user, monitor=monitor, **changes)
        return Response(self.get_serializer(monitor).data)


class MonitorRunView(GenericAPIView):
    serializer_class = s.CheckRunSerializer
    queryset = CheckRun.objects.none()

    @extend_schema(request=None, responses={202: s.CheckRunSerializer})
    def post(self, request: Request, model_name: str, pk: int) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        monitor = selectors.monitor_get(user=request.user, model=model, pk=pk)
        run, _created = services.check_run_request(actor=request.user, monitor=monitor)
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)


class CheckListView(GenericAPIView):
    serializer_class = s.CheckRunSerializer
    queryset = CheckRun.objects.none()

    @extend_schema(operation_id="monitor_checks_list", responses=s.CheckRunSerializer(many=True))
    def get(self, request: Request, model_name: str, pk: int) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        monitor = selectors.monitor_get(user=request.user, model=model, pk=pk)
        page = self.paginate_queryset(selectors.check_list(user=request.user, monitor=monitor))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AlertListView(GenericAPIView):
    serializer_class = s.AlertSerializer
    queryset = Alert.objects.none()
    filterset_class = AlertFilterSet

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Alert.objects.none()
        return selectors.alert_list(user=self.request.user)

    @extend_schema(operation_id="alerts_list", responses=s.AlertSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AlertActionView(GenericAPIView):
    serializer_class = s.AlertSerializer
    queryset = Alert.objects.none()
    action_name = ""

    @extend_schema(request=s.AlertResolveSerializer, responses=s.AlertSerializer)
    def post(self, request: Request, pk: int) -> Response:
        alert = selectors.alert_get(user=request.user, pk=pk)
        if self.action_name == "acknowledge":
            alert = services.alert_acknowledge(actor=request.user, alert=alert)
        else:
            body = s.AlertResolveSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            alert = services.alert_resolve(
                actor=request.user, alert=alert, comment=body.validated_data["comment"]
            )
        return Response(self.get_serializer(alert).data)


class ABComparisonView(GenericAPIView):
    serializer_class = s.ABResultSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("a", str, required=True),
            OpenApiParameter("b", str, required=True),
            OpenApiParameter("metric", str),
            OpenApiParameter("alpha", float),
            OpenApiParameter("since", str, description="ISO 8601; only batches after this"),
        ],
        responses=s.ABResultSerializer,
        description=(
            "Compare version B with version A on their labelled predictions: difference with "
            "a 95% interval, a two-proportion z-test for accuracy and a bootstrap for other "
            "metrics, and a verdict that calls no winner under 100 labelled rows per arm."
        ),
    )
    def get(self, request: Request, model_name: str) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        query = s.ABQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        result = selectors.ab_comparison(
            user=request.user,
            model=model,
            a=q["a"],
            b=q["b"],
            metric=q["metric"],
            since=q.get("since"),
            alpha=q["alpha"],
        )
        return Response(s.ABResultSerializer(result).data)


class DataPolicyView(GenericAPIView):
    """What monitoring keeps of the model's logged batches: retention, dropped and hashed
    columns. ``GET`` with the view right; ``PUT`` (the whole policy) with ``manage``,
    audited; a change applies to batches posted afterwards."""

    serializer_class = s.DataPolicySerializer
    queryset = PredictionBatch.objects.none()

    def get(self, request: Request, model_name: str) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        return Response(self.get_serializer(data_policy.data_policy_get(model=model)).data)

    @extend_schema(request=s.DataPolicyUpdateSerializer, responses=s.DataPolicySerializer)
    def put(self, request: Request, model_name: str) -> Response:
        model = registry_selectors.model_get(user=request.user, name=model_name)
        body = s.DataPolicyUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = data_policy.data_policy_update(
            actor=request.user, model=model, **body.validated_data
        )
        return Response(self.get_serializer(policy).data)
