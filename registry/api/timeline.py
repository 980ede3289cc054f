"""``GET /api/v1/models/{name}/timeline/``: the model's loop on one time axis
(``registry.timeline``), newest first, a page at a time."""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors, timeline


class TimelineQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False, max_length=100)
    page_size = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=timeline.MAX_PAGE_SIZE,
        default=timeline.DEFAULT_PAGE_SIZE,
    )


class TimelineEntrySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=timeline.KINDS)
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    title = serializers.CharField()
    status = serializers.CharField()
    actor = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()
    url = serializers.SerializerMethodField()
    extra = serializers.DictField()

    def get_url(self, entry: timeline.TimelineEntry) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(entry.url) if request else entry.url


class TimelinePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = TimelineEntrySerializer(many=True)


class TimelineView(APIView):
    @extend_schema(
        operation_id="models_timeline",
        parameters=[
            OpenApiParameter(
                "kind",
                str,
                many=True,
                description="Only these kinds (repeat, or comma-separated): "
                + ", ".join(timeline.KINDS),
            ),
            OpenApiParameter("since", str, description="ISO 8601; only entries at or after"),
            OpenApiParameter("cursor", str, description="From a previous page's `next`"),
            OpenApiParameter("page_size", int, description=f"1 to {timeline.MAX_PAGE_SIZE}"),
        ],
        responses=TimelinePageSerializer,
        description=(
            "Alerts, retraining runs, versions, review changes, sign-offs, deployments and "
            "rollbacks of the model, newest first, each with the link to its page."
        ),
    )
    def get(self, request: Request, model_name: str) -> Response:
        model = selectors.model_get(user=request.user, name=model_name)
        kinds = timeline.parse_kinds(request.query_params.getlist("kind"))
        query = TimelineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        cursor = timeline.parse_cursor(q.get("cursor"))
        entries, more = timeline.timeline_list(
            user=request.user,
            model=model,
            kinds=kinds,
            since=q.get("since"),
            cursor=cursor,
            limit=q["page_size"],
        )
        next_url = None
        if more:
            params = [("kind", k) for k in request.query_params.getlist("kind")]
            if "since" in request.query_params:
                params.append(("since", request.query_params["since"]))
            params += [("page_size", q["page_size"]), ("cursor", entries[-1].cursor)]
            next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
        body = {
            "next": next_url,
            "results": TimelineEntrySerializer(
                entries, many=True, context={"request": request}
            ).data,
        }
        return Response(body)
