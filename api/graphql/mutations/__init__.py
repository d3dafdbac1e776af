"""Root mutation fields: conversations, turns, devices, projects and feedback, each
calling one service."""

from strawberry.tools import merge_types

from api.graphql.mutations.conversations import ConversationMutations
from api.graphql.mutations.devices import DeviceMutations
from api.graphql.mutations.feedback import FeedbackMutations
from api.graphql.mutations.projects import ProjectMutations
from api.graphql.mutations.turns import TurnMutations

Mutation = merge_types(
    "Mutation",
    (ConversationMutations, TurnMutations, DeviceMutations, ProjectMutations, FeedbackMutations),
)

__all__ = ["Mutation"]
