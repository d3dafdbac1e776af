"""Automatic titles: after the first reply of an untitled conversation, the conversation's
own model names it in the background (`generation.schedule_title`); the title is written
only where no one (the user) has titled it (`services.store_generated_title`) and
announced as `conversation.updated`. Decisions: docs/architecture.md, "Automatic titles".
"""
