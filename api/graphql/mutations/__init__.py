"""Root mutation fields: conversation writes, turns and devices, each calling one service."""

from strawberry.tools import merge_types

from api.graphql.mutations.conversations import ConversationMutations
from api.graphql.mutations.devices import DeviceMutations
from api.graphql.mutations.turns import TurnMutations

Mutation = merge_types("Mutation", (ConversationMutations, TurnMutations, DeviceMutations))

__all__ = ["Mutation"]
