"""`/api/v1/auth/`: sign-up, tokens, sign-out, the current user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import update_session_auth_hash
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import get_token_model
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services as accounts
from api.rest.serializers import (
    ErrorSerializer,
    PasswordChangeSerializer,
    RegisterSerializer,
    TokenCreateSerializer,
    TokenSerializer,
    UserSerializer,
)
from api.rest.throttles import (
    LoginThrottle,
    PasswordChangeThrottle,
    RegisterThrottle,
    UserThrottle,
)
from api.rest.views.base import ConfabView, validated


def token_response(instance: Any, raw: str, status: int) -> Response:
    data = TokenSerializer({"token": raw, "expiry": instance.expiry, "user": instance.user}).data
    return Response(data, status=status)


class RegisterView(ConfabView):
    # No authentication: a stale token in the client must not block sign-up.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [UserThrottle, RegisterThrottle]

    @extend_schema(
        operation_id="auth_register",
        tags=["auth"],
        summary="Create an account and sign in",
        description="Available when the server allows sign-up (CONFAB_REGISTRATION_OPEN). "
        "Returns a token for the new account, like `auth_token_create`.",
        request=RegisterSerializer,
        responses={
            201: TokenSerializer,
            403: OpenApiResponse(ErrorSerializer, description="REGISTRATION_CLOSED."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        if not accounts.registration_open():
            raise accounts.RegistrationClosed()
        data = validated(RegisterSerializer, request.data)
        user = accounts.register_user(
            username=data["username"], password=data["password"], email=data.get("email", "")
        )
        instance, raw = accounts.issue_token(
            user=user, device_name=data.get("device_name", ""), request=request._request
        )
        return token_response(instance, raw, 201)


class TokenView(ConfabView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [UserThrottle, LoginThrottle]

    @extend_schema(
        operation_id="auth_token_create",
        tags=["auth"],
        summary="Sign in: exchange username and password for a token",
        description="One token per device (`device_name` names it). Wrong credentials: 400 "
        "INVALID_CREDENTIALS. Attempts are rate limited per client address and username.",
        request=TokenCreateSerializer,
        responses={200: TokenSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenCreateSerializer, request.data)
        user = accounts.login(
            request=request._request, username=data["username"], password=data["password"]
        )
        instance, raw = accounts.issue_token(
            user=user, device_name=data.get("device_name", ""), request=request._request
        )
        return token_response(instance, raw, 200)


class LogoutView(ConfabView):
    @extend_schema(
        operation_id="auth_logout",
        tags=["auth"],
        summary="Revoke the token of this request",
        request=None,
        responses={204: None},
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, get_token_model()):
            accounts.revoke_token(token=request.auth, request=request._request)
        return Response(status=204)


class LogoutAllView(ConfabView):
    @extend_schema(
        operation_id="auth_logout_all",
        tags=["auth"],
        summary="Revoke every token of the user (sign out on all devices)",
        request=None,
        responses={204: None},
    )
    def post(self, request: Request) -> Response:
        accounts.revoke_all_tokens(user=request.user, request=request._request)
        return Response(status=204)


class PasswordChangeView(ConfabView):
    throttle_classes = [UserThrottle, PasswordChangeThrottle]

    @extend_schema(
        operation_id="auth_password_change",
        tags=["auth"],
        summary="Change the signed-in user's password",
        description="Checks `current_password` (wrong: 400 INVALID_CREDENTIALS naming "
        "`current_password`), applies the server's password rules to `new_password` (400 "
        "VALIDATION_ERROR naming it), then signs out every other device: all the user's "
        "tokens are revoked except the one of this request. Attempts spend the sign-in "
        "rate limit of the user's name.",
        request=PasswordChangeSerializer,
        responses={
            204: None,
            400: OpenApiResponse(
                ErrorSerializer, description="INVALID_CREDENTIALS or VALIDATION_ERROR."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(PasswordChangeSerializer, request.data)
        token = request.auth if isinstance(request.auth, get_token_model()) else None
        accounts.change_password(
            user=request.user,
            current_password=data["current_password"],
            new_password=data["new_password"],
            keep_token=token,
        )
        if token is None and hasattr(request._request, "session"):
            # Session sign-in (the browsable API): keep this session, like Django's views.
            update_session_auth_hash(request._request, request.user)
        return Response(status=204)


class MeView(ConfabView):
    @extend_schema(
        operation_id="auth_me",
        tags=["auth"],
        summary="The signed-in user",
        responses={200: UserSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)
