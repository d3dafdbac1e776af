"""`/api/v1/auth/tokens/`: the user's signed-in devices, signing one out, and the push
credentials of the current device."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import get_token_model
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts import services as accounts
from accounts.models import PushPlatform
from accounts.payloads import device_payload
from api.rest.serializers import ErrorSerializer, InputSerializer, OutputSerializer
from api.rest.views.base import ConfabView, validated
from core.errors import NotAuthenticated
from core.timestamps import iso_timestamp


class DeviceSerializer(OutputSerializer):
    """A signed-in device: one token."""

    id = serializers.UUIDField(read_only=True)
    device_name = serializers.CharField(read_only=True, allow_blank=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="To the minute."
    )
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)
    current = serializers.BooleanField(read_only=True, help_text="The device of this request.")
    push_platform = serializers.ChoiceField(
        choices=PushPlatform.choices, read_only=True, allow_null=True
    )

    def to_representation(self, token: Any) -> dict[str, Any]:
        return device_payload(token, current_token_pk=self.context.get("current"))


class DeviceListSerializer(OutputSerializer):
    results = DeviceSerializer(many=True, read_only=True)


class PushCredentialSerializer(InputSerializer):
    """Where this device gets notifications when a reply ends while it is not connected."""

    platform = serializers.ChoiceField(choices=PushPlatform.choices)
    subscription = serializers.JSONField(
        required=False,
        help_text='webpush: the browser\'s PushSubscription {"endpoint", "keys": {"p256dh", '
        '"auth"}}.',
    )
    token = serializers.CharField(
        required=False, max_length=2048, help_text="apns / fcm: the device token."
    )


class PushCredentialOutputSerializer(OutputSerializer):
    platform = serializers.ChoiceField(choices=PushPlatform.choices, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class PushSetupSerializer(OutputSerializer):
    """What a browser needs to subscribe, and this device's registration."""

    webpush_public_key = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The server's VAPID public key (`applicationServerKey`); null when Web "
        "Push is not configured.",
    )
    platform = serializers.ChoiceField(
        choices=PushPlatform.choices, read_only=True, allow_null=True
    )


def current_token(request: Request) -> Any:
    """The token of this request (devices are tokens: a session has none)."""
    if not isinstance(getattr(request, "auth", None), get_token_model()):
        raise NotAuthenticated("Sign in with a token to manage this device.")
    return request.auth


class DeviceListView(ConfabView):
    @extend_schema(
        operation_id="auth_devices_list",
        tags=["auth"],
        summary="The signed-in devices (tokens) of the user, newest first",
        responses={200: DeviceListSerializer},
    )
    def get(self, request: Request) -> Response:
        current = getattr(request.auth, "pk", None)
        devices = account_selectors.devices_of(request.user)
        return Response(
            DeviceListSerializer({"results": devices}, context={"current": current}).data
        )


class DeviceDetailView(ConfabView):
    @extend_schema(
        operation_id="auth_devices_revoke",
        tags=["auth"],
        summary="Sign a device out (its token stops working at once, its sockets close)",
        request=None,
        responses={
            204: None,
            (404, "application/json"): OpenApiResponse(ErrorSerializer, description="NOT_FOUND."),
        },
    )
    def delete(self, request: Request, device_id: UUID) -> Response:
        accounts.revoke_device(user=request.user, device_id=device_id, request=request._request)
        return Response(status=204)


class CurrentPushView(ConfabView):
    @extend_schema(
        operation_id="auth_push_retrieve",
        tags=["auth"],
        summary="The server's Web Push key and this device's push registration",
        responses={200: PushSetupSerializer},
    )
    def get(self, request: Request) -> Response:
        push = getattr(current_token(request), "push", None)
        return Response(
            {
                "webpush_public_key": settings.CONFAB_VAPID_PUBLIC_KEY or None,
                "platform": push.platform if push else None,
            }
        )

    @extend_schema(
        operation_id="auth_push_set",
        tags=["auth"],
        summary="Register this device for push notifications (replaces its registration)",
        request=PushCredentialSerializer,
        responses={200: PushCredentialOutputSerializer},
    )
    def put(self, request: Request) -> Response:
        data = validated(PushCredentialSerializer, request.data)
        credential_data = (
            data.get("subscription")
            if data["platform"] == "webpush"
            else {"token": data.get("token")}
        )
        credential = accounts.register_push(
            token=current_token(request), platform=data["platform"], data=credential_data
        )
        return Response(
            {
                "platform": credential.platform,
                "created_at": iso_timestamp(credential.created_at),
                "updated_at": iso_timestamp(credential.updated_at),
            }
        )

    @extend_schema(
        operation_id="auth_push_remove",
        tags=["auth"],
        summary="Stop push notifications to this device",
        request=None,
        responses={204: None},
    )
    def delete(self, request: Request) -> Response:
        accounts.remove_push(token=current_token(request))
        return Response(status=204)
