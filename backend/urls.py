"""HTTP routes: REST under /api/v1/, its docs under /api/, GraphQL, admin, the web app."""

from django.contrib import admin
from django.urls import include, path

from api.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("api.rest.urls")),
    path("graphql/", include("api.graphql.urls")),
    path("", include("api.web.urls")),
]
