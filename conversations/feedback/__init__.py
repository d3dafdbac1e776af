"""Thumbs up/down with an optional comment on AI replies: the model, the writes and the
read that attaches each user's own rating to the messages it shows."""
