"""Routes of the web chat app: the page at `/` and its files under `/web/`."""

from django.urls import path

from api.web import views

app_name = "web"

urlpatterns = [
    path("", views.index, name="index"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("s/<str:token>", views.shared_conversation, name="shared"),
    path("web/<path:name>", views.asset, name="asset"),
]
