"""GraphQL output types. Messages and conversations are built through one conversion
each: from the event payload shape of `conversations.events` (`from_payload`), which
model instances reach through that module's own `message_payload` /
`conversation_payload` (`from_model`). Queries and subscriptions therefore return
exactly the same shapes."""
