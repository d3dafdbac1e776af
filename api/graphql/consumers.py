from channels.generic.websocket import AsyncWebsocketConsumer


class GraphQLWebsocketConsumer(AsyncWebsocketConsumer):
    pass
