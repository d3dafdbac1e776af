"""Share links: a read-only snapshot of a conversation up to one message, readable by
whoever holds its unguessable token (`/s/<token>` in the web app,
`GET /api/v1/shared/<token>/`), listed and revoked by its owner."""
