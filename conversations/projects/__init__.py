"""Projects: a user's groups of conversations with shared instructions (models, writes,
reads). Pins live on the conversation row (`Conversation.pinned`)."""
