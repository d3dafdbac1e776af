"""`/graphql/`: the HTTP view (websockets are routed in backend/routing.py)."""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from api.graphql.views import GraphQLView

# csrf-exempt: the view authenticates by bearer token only and ignores cookies.
urlpatterns = [path("", csrf_exempt(GraphQLView.as_view()), name="graphql")]
