"""Export and import of a user's conversations (issue 19, item 4).

- `selectors`: the reads, owner-scoped, messages in id-keyset chunks as stored rows
  (their JSON columns kept as the database's text, never parsed);
- `documents`: the JSON document and the Markdown rendering, both written as a stream
  of byte chunks;
- `archive`: the zip of all the user's data, streamed;
- `imports`: the import service (validate the whole document, then write it in one
  transaction with new ids).

Decisions: docs/architecture.md, "Export and import".
"""
