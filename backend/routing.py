"""Websocket routes."""

from django.urls import path

from api.graphql.consumers import GraphQLWebsocketConsumer
from conversations.consumers import AgentChatConsumer

websocket_urlpatterns = [
    path("ws/conversations/<int:conversation_pk>/", AgentChatConsumer.as_asgi()),
    path("graphql/", GraphQLWebsocketConsumer.as_asgi()),
]
