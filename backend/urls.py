"""HTTP routes: REST under /api/v1/, its docs under /api/, GraphQL, admin, the web app."""

from django.contrib import admin
from django.urls import include, path

from api.health import healthz
from api.rest.docs import sidecar_file

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Swagger UI's and ReDoc's files, where drf-spectacular's SIDECAR setting links them.
    path("static/drf_spectacular_sidecar/<path:path>", sidecar_file, name="api-docs-file"),
    path("admin/", admin.site.urls),
    path("api/", include("api.rest.urls")),
    path("graphql/", include("api.graphql.urls")),
    path("", include("api.web.urls")),
]
