"""Root mutation fields: conversations, turns, devices, projects, feedback and shares, each
calling one service."""

from strawberry.tools import merge_types

from api.graphql.mutations.conversations import ConversationMutations
from api.graphql.mutations.devices import DeviceMutations
from api.graphql.mutations.feedback import FeedbackMutations
from api.graphql.mutations.projects import ProjectMutations
from api.graphql.mutations.shares import ShareMutations
from api.graphql.mutations.turns import TurnMutations

Mutation = merge_types(
    "Mutation",
    (
        ConversationMutations,
        TurnMutations,
        DeviceMutations,
        ProjectMutations,
        FeedbackMutations,
        ShareMutations,
    ),
)

__all__ = ["Mutation"]
