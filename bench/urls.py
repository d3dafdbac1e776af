"""The product's URLs plus the benchmark-only baseline endpoint."""

from django.urls import path

from backend.urls import urlpatterns as product_urlpatterns
from bench.baseline import BaselineMessageList

urlpatterns = [
    path(
        "bench/baseline/conversations/<int:conversation_id>/messages/",
        BaselineMessageList.as_view(),
    ),
    *product_urlpatterns,
]
