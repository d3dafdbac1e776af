"""Root mutation fields: conversation writes and turns, each calling one service."""

from strawberry.tools import merge_types

from api.graphql.mutations.conversations import ConversationMutations
from api.graphql.mutations.turns import TurnMutations

Mutation = merge_types("Mutation", (ConversationMutations, TurnMutations))

__all__ = ["Mutation"]
