"""The GraphQL surface at `/graphql/`: a thin strawberry adapter over selectors, services
and the turn engine, with live subscriptions fed by `conversations.events`.

Layout (after Saleor's graphql/): `types/` (output types, each constructible from a
model instance and from an event payload), `queries`, `mutations/`, `subscriptions`,
`extensions` (error mapping and safety limits), `schema`, `views` (HTTP),
`consumers` (websockets). Decisions are written down in docs/graphql.md.
"""
