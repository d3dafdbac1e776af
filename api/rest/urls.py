"""REST routes, included at `api/` by backend/urls.py: the v1 API and its docs (served
when CONFAB_API_DOCS is on: api/rest/docs.py).

Anything else under `api/v1/` answers 404 in the API's error shape.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from api.rest.docs import RedocView, SwaggerView
from api.rest.views.agents import AgentDetailView, AgentListView
from api.rest.views.approvals import (
    ApproveToolCallView,
    DenyToolCallView,
    PendingToolCallsView,
)
from api.rest.views.auth import (
    LogoutAllView,
    LogoutView,
    MeView,
    PasswordChangeView,
    RegisterView,
    TokenView,
)
from api.rest.views.conversations import (
    ConversationBranchView,
    ConversationClearView,
    ConversationDetailView,
    ConversationForkView,
    ConversationListView,
)
from api.rest.views.devices import CurrentPushView, DeviceDetailView, DeviceListView
from api.rest.views.events import ConversationEventsView
from api.rest.views.exports import (
    ConversationExportView,
    ConversationImportView,
    ExportArchiveView,
)
from api.rest.views.feedback import MessageFeedbackView
from api.rest.views.files import (
    FileContentView,
    FileDetailView,
    FileListView,
    SignedFileView,
)
from api.rest.views.messages import MessageDetailView, MessagesView
from api.rest.views.models import ModelListView
from api.rest.views.projects import ProjectDetailView, ProjectListView
from api.rest.views.search import SearchView
from api.rest.views.shares import (
    SharedConversationView,
    ShareDetailView,
    SharedFileView,
    ShareListView,
)
from api.rest.views.sync import SyncView
from api.rest.views.turns import CancelView, MessageEditView, RegenerateView
from api.rest.views.usage import QuotaView, UsageView
from core.errors import NotFound

app_name = "rest"


@csrf_exempt
def unknown_endpoint(request: HttpRequest) -> JsonResponse:
    detail = "No such endpoint."
    if not request.path.endswith("/"):
        detail += " Endpoint paths end with a slash."
    error = NotFound(detail)
    return JsonResponse(
        error.as_dict(),
        status=error.status,
        json_dumps_params={"ensure_ascii": False, "separators": (",", ":")},
    )


CONVERSATION = "v1/conversations/<int:conversation_id>/"
DOCS = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("v1/auth/register/", RegisterView.as_view(), name="auth-register"),
    path("v1/auth/token/", TokenView.as_view(), name="auth-token"),
    path("v1/auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("v1/auth/logout-all/", LogoutAllView.as_view(), name="auth-logout-all"),
    path("v1/auth/me/", MeView.as_view(), name="auth-me"),
    path("v1/auth/password/", PasswordChangeView.as_view(), name="auth-password"),
    path("v1/auth/tokens/", DeviceListView.as_view(), name="auth-devices"),
    path("v1/auth/tokens/current/push/", CurrentPushView.as_view(), name="auth-push"),
    path("v1/auth/tokens/<uuid:device_id>/", DeviceDetailView.as_view(), name="auth-device"),
    path("v1/agents/", AgentListView.as_view(), name="agent-list"),
    path("v1/agents/<slug:slug>/", AgentDetailView.as_view(), name="agent-detail"),
    path("v1/models/", ModelListView.as_view(), name="model-list"),
    path("v1/conversations/", ConversationListView.as_view(), name="conversation-list"),
    path("v1/conversations/import/", ConversationImportView.as_view(), name="conversation-import"),
    path(CONVERSATION, ConversationDetailView.as_view(), name="conversation-detail"),
    path(f"{CONVERSATION}clear/", ConversationClearView.as_view(), name="conversation-clear"),
    path(f"{CONVERSATION}cancel/", CancelView.as_view(), name="conversation-cancel"),
    path(f"{CONVERSATION}branch/", ConversationBranchView.as_view(), name="conversation-branch"),
    path(f"{CONVERSATION}fork/", ConversationForkView.as_view(), name="conversation-fork"),
    path(f"{CONVERSATION}tool-calls/", PendingToolCallsView.as_view(), name="tool-call-list"),
    path(
        f"{CONVERSATION}tool-calls/<str:call_id>/approve/",
        ApproveToolCallView.as_view(),
        name="tool-call-approve",
    ),
    path(
        f"{CONVERSATION}tool-calls/<str:call_id>/deny/",
        DenyToolCallView.as_view(),
        name="tool-call-deny",
    ),
    path(f"{CONVERSATION}regenerate/", RegenerateView.as_view(), name="conversation-regenerate"),
    path(f"{CONVERSATION}events/", ConversationEventsView.as_view(), name="conversation-events"),
    path(f"{CONVERSATION}export/", ConversationExportView.as_view(), name="conversation-export"),
    path(f"{CONVERSATION}messages/", MessagesView.as_view(), name="message-list"),
    path(
        f"{CONVERSATION}messages/<int:message_id>/",
        MessageDetailView.as_view(),
        name="message-detail",
    ),
    path(
        f"{CONVERSATION}messages/<int:message_id>/feedback/",
        MessageFeedbackView.as_view(),
        name="message-feedback",
    ),
    path(
        f"{CONVERSATION}messages/<int:message_id>/edit/",
        MessageEditView.as_view(),
        name="message-edit",
    ),
    path(f"{CONVERSATION}shares/", ShareListView.as_view(), name="share-list"),
    path(f"{CONVERSATION}shares/<int:share_id>/", ShareDetailView.as_view(), name="share-detail"),
    path("v1/shared/files/<str:token>/", SharedFileView.as_view(), name="shared-file"),
    path("v1/shared/<str:token>/", SharedConversationView.as_view(), name="shared"),
    path("v1/sync/", SyncView.as_view(), name="sync"),
    path("v1/export/", ExportArchiveView.as_view(), name="export"),
    path("v1/files/", FileListView.as_view(), name="file-list"),
    path("v1/files/signed/<str:token>/", SignedFileView.as_view(), name="file-signed"),
    path("v1/files/<int:file_id>/", FileDetailView.as_view(), name="file-detail"),
    path("v1/files/<int:file_id>/content/", FileContentView.as_view(), name="file-content"),
    path("v1/search/", SearchView.as_view(), name="search"),
    path("v1/projects/", ProjectListView.as_view(), name="project-list"),
    path("v1/projects/<int:project_id>/", ProjectDetailView.as_view(), name="project-detail"),
    path("v1/usage/", UsageView.as_view(), name="usage"),
    path("v1/usage/quota/", QuotaView.as_view(), name="usage-quota"),
    re_path(r"^v1/", unknown_endpoint, name="unknown-endpoint"),
    path("schema/", SpectacularAPIView.as_view(**DOCS), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="rest:schema", **DOCS), name="docs"),
    path("redoc/", RedocView.as_view(url_name="rest:schema", **DOCS), name="redoc"),
]
