"""GraphQL message type benchmark: is a strawberry-django type over ConversationMessage as
fast as the payload-built `Message` for a history page? (issue 15)

    python -m bench.graphql_types [--repeat 300]

One page of the history benchmark's long conversation (the newest 50 messages, the rows
`selectors.message_page` gives) is executed in process through two schemas that differ
only in the message type: the product's `api.graphql.types.messages.Message` (built
from `payloads.message_payload`) and a strawberry-django type over the model with the
same fields, the enums and the conversation id as small resolvers. Both answer the same
document with the same data (checked first); every round times both, in a shuffled
order, so background load hits them alike. CPU time of this process, median.

No HTTP, no extensions, no database in the timed part: what is compared is only how the
type resolves a page of rows (what `messages` spends per page beyond the query).
"""

import argparse
import asyncio
import random
import time
from datetime import datetime
from typing import Any

from bench.common import (
    Summary,
    ensure_database,
    fmt_ms,
    fmt_ratio,
    print_machine,
    setup_django,
    table,
)

LIMIT = 50
FIELDS = (
    "id conversationId role text content status turnId clientMessageId model usage error "
    "createdAt updatedAt"
)
DOCUMENT = f"{{ page {{ {FIELDS} }} }}"


def schemas(rows: list[Any]) -> dict[str, Any]:
    """The two schemas, each with one `page` field returning the same rows. (Types made
    after Django is set up; annotations evaluated here, hence no `annotations` import.)"""
    import strawberry
    import strawberry_django
    from strawberry.scalars import JSON
    from strawberry.schema.config import StrawberryConfig

    from api.graphql.schema import DateTime
    from api.graphql.types.messages import Message, MessageRole, MessageStatus
    from conversations.models import ConversationMessage

    def _role(root: strawberry.Parent[ConversationMessage]) -> MessageRole:  # type: ignore[valid-type]
        return MessageRole(root.role)

    def _status(root: strawberry.Parent[ConversationMessage]) -> MessageStatus:  # type: ignore[valid-type]
        return MessageStatus(root.status)

    def _conversation_id(root: strawberry.Parent[ConversationMessage]) -> strawberry.ID:
        return strawberry.ID(str(root.conversation_id))

    @strawberry_django.type(ConversationMessage, name="Message")
    class ModelMessage:
        id: strawberry.ID
        conversation_id: strawberry.ID = strawberry.field(resolver=_conversation_id)
        role: MessageRole = strawberry.field(resolver=_role)  # type: ignore[valid-type]
        text: str
        content: JSON
        status: MessageStatus = strawberry.field(resolver=_status)  # type: ignore[valid-type]
        turn_id: strawberry.ID | None
        client_message_id: str | None
        model: str
        usage: JSON | None
        error: JSON | None
        created_at: datetime
        updated_at: datetime

    @strawberry.type
    class PayloadQuery:
        @strawberry.field
        async def page(self) -> list[Message]:
            return [Message.from_model(row) for row in rows]

    @strawberry.type
    class ModelQuery:
        @strawberry.field
        async def page(self) -> list[ModelMessage]:
            return rows

    config = StrawberryConfig(scalar_map={datetime: DateTime})
    return {
        "payload-built Message (product)": strawberry.Schema(query=PayloadQuery, config=config),
        "strawberry-django type": strawberry.Schema(query=ModelQuery, config=config),
    }


async def measure(candidates: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    answers = [await schema.execute(DOCUMENT) for schema in candidates.values()]
    for answer in answers:
        assert not answer.errors, answer.errors
    assert all(answer.data == answers[0].data for answer in answers), "different answers"
    assert len(answers[0].data["page"]) == LIMIT

    rng = random.Random(15)
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    for round_number in range(repeat + 5):
        order = list(candidates.items())
        rng.shuffle(order)
        for name, schema in order:
            start = time.process_time()
            await schema.execute(DOCUMENT)
            if round_number >= 5:
                cpu[name].append(time.process_time() - start)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description="GraphQL message type benchmark (issue 15).")
    parser.add_argument("--repeat", type=int, default=300, help="timed rounds")
    args = parser.parse_args()

    setup_django(redis=False)
    ensure_database()
    from bench.dataset import load
    from conversations import selectors
    from conversations.inputs import HistoryRequest
    from conversations.models import Conversation

    dataset = load()
    conversation = Conversation.objects.get(pk=dataset.big_conversation_id)
    rows = selectors.message_page(
        conversation=conversation, request=HistoryRequest(size=LIMIT)
    ).results
    cpu = asyncio.run(measure(schemas(list(rows)), args.repeat))

    print_machine()
    print(f"# one page of {LIMIT} messages, {args.repeat} interleaved rounds, CPU ms")
    base = Summary.of(cpu["payload-built Message (product)"]).median
    print(
        table(
            ["type", "median ms", "p95 ms", "vs payload-built"],
            [
                [
                    name,
                    fmt_ms((summary := Summary.of(values)).median),
                    fmt_ms(summary.p95),
                    fmt_ratio(summary.median / base),
                ]
                for name, values in cpu.items()
            ],
        )
    )


if __name__ == "__main__":
    main()
