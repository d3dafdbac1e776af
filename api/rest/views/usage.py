"""`/api/v1/usage/`: the caller's tokens and cost; `/api/v1/usage/quota/`: what is left."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import OutputSerializer
from api.rest.views.base import ConfabView
from conversations.usage.inputs import parse_usage_query
from conversations.usage.selectors import quota_payload, quota_state, usage_report

COST_HELP = "USD, as a decimal string (ten places)."


class UsageTotalsSerializer(OutputSerializer):
    """Model calls, their tokens and what they cost."""

    calls = serializers.IntegerField(read_only=True)
    input_tokens = serializers.IntegerField(read_only=True)
    output_tokens = serializers.IntegerField(read_only=True)
    total_tokens = serializers.IntegerField(read_only=True)
    cost = serializers.DecimalField(
        max_digits=20, decimal_places=10, read_only=True, help_text=COST_HELP
    )


class UsageGroupSerializer(UsageTotalsSerializer):
    """One group of the report: a UTC day, a model or a conversation."""

    key = serializers.CharField(
        read_only=True,
        help_text="The day (YYYY-MM-DD), the model's name, or the conversation's id "
        '("" for calls outside a conversation).',
    )
    title = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The day, the model, or the conversation's title (null once deleted).",
    )


class UsageReportSerializer(OutputSerializer):
    """The caller's usage from `start` to `end` (UTC days, inclusive)."""

    start = serializers.DateField(read_only=True)
    end = serializers.DateField(read_only=True)
    group_by = serializers.ChoiceField(choices=["day", "model", "conversation"], read_only=True)
    groups = UsageGroupSerializer(many=True, read_only=True)
    totals = UsageTotalsSerializer(read_only=True)


class QuotaTokensSerializer(OutputSerializer):
    limit = serializers.IntegerField(read_only=True, allow_null=True, help_text="null: none.")
    used = serializers.IntegerField(read_only=True)
    remaining = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="limit - used - in flight; null: no limit."
    )


class QuotaCostSerializer(OutputSerializer):
    limit = serializers.DecimalField(
        max_digits=20, decimal_places=10, read_only=True, allow_null=True, help_text=COST_HELP
    )
    used = serializers.DecimalField(
        max_digits=20, decimal_places=10, read_only=True, help_text=COST_HELP
    )
    remaining = serializers.DecimalField(
        max_digits=20, decimal_places=10, read_only=True, allow_null=True, help_text=COST_HELP
    )


class QuotaPeriodSerializer(OutputSerializer):
    """One quota period (a UTC day or month)."""

    starts_at = serializers.DateTimeField(read_only=True)
    resets_at = serializers.DateTimeField(read_only=True)
    tokens = QuotaTokensSerializer(read_only=True)
    cost = QuotaCostSerializer(read_only=True)
    spent = serializers.BooleanField(
        read_only=True, help_text="A turn started now is refused (429 QUOTA_EXCEEDED)."
    )


class QuotaInFlightSerializer(OutputSerializer):
    """The caller's turns in flight and what they count for until they end."""

    turns = serializers.IntegerField(read_only=True)
    tokens = serializers.IntegerField(read_only=True)
    cost = serializers.DecimalField(
        max_digits=20, decimal_places=10, read_only=True, help_text=COST_HELP
    )


class QuotaSerializer(OutputSerializer):
    """The caller's quota: used and left this UTC day and month."""

    day = QuotaPeriodSerializer(read_only=True)
    month = QuotaPeriodSerializer(read_only=True)
    in_flight = QuotaInFlightSerializer(read_only=True)


class UsageView(ConfabView):
    @extend_schema(
        operation_id="usage_report",
        tags=["usage"],
        summary="The caller's model usage (tokens and cost), grouped",
        description="Every model call of the caller's turns, regenerates and greetings, "
        "summed per UTC day, model or conversation, with totals. Defaults: this UTC month "
        "up to today, by day; at most 366 days.",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="First UTC day."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last UTC day (inclusive)."),
            OpenApiParameter(
                "group_by",
                OpenApiTypes.STR,
                enum=["day", "model", "conversation"],
                description="Default: day.",
            ),
        ],
        responses={200: UsageReportSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        query = parse_usage_query(
            start=params.get("from"), end=params.get("to"), group_by=params.get("group_by")
        )
        report = usage_report(
            user=request.user, start=query.start, end=query.end, group_by=query.group_by
        )
        return Response(UsageReportSerializer(report).data)


class QuotaView(ConfabView):
    @extend_schema(
        operation_id="usage_quota",
        tags=["usage"],
        summary="What is left of the caller's usage quota",
        description="Per UTC day and month: the limits in force (null: none), what was "
        "used, and what remains once the caller's turns in flight are counted. A turn is "
        "refused (429 QUOTA_EXCEEDED, with resets_at) while a period is `spent`.",
        responses={200: QuotaSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(QuotaSerializer(quota_payload(quota_state(request.user.pk))).data)
