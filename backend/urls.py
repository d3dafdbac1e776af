"""HTTP routes: REST under /api/v1/, its docs under /api/, GraphQL, admin, the web app."""

from django.contrib import admin
from django.urls import include, path

from api.health import healthz, readyz
from api.rest.docs import sidecar_file
from core.metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    # Swagger UI's and ReDoc's files, where drf-spectacular's SIDECAR setting links them.
    path("static/drf_spectacular_sidecar/<path:path>", sidecar_file, name="api-docs-file"),
    path("admin/", admin.site.urls),
    path("api/", include("api.rest.urls")),
    path("graphql/", include("api.graphql.urls")),
    path("", include("api.web.urls")),
]
