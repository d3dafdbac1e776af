"""The agents Confab ships: the seed's `language-tutor` and a tool-using assistant.

Installed by the data migration `0002_seed_agents`; tests that flush the
database reinstall them with `install_seed_agents`.
"""

from typing import Any

LANGUAGE_TUTOR: dict[str, Any] = {
    "slug": "language-tutor",
    "name": "Language tutor",
    "description": "Role-play a situation in the language you are learning, at your level.",
    "system_prompt_template": (
        "You are a patient, encouraging language tutor. Converse with the learner only "
        "in {언어}: never translate into another language, and never add pronunciation "
        "guides or romanization. Play out this situation as a role-play and stay in your "
        "role: {상황}. Keep vocabulary, grammar and sentence length at the {레벨} level. "
        "Keep each reply to one to three short sentences and end with something the "
        "learner can answer. When the learner makes a mistake, use the correct form "
        "naturally in your reply instead of explaining it."
    ),
    "first_user_message_template": "첫 문장으로 대화를 시작해주세요.",
    "model": "gpt-4o",
    "temperature": 1.0,
    "tools": [],
    "context_schema": {
        "언어": {"default": "중국어", "description": "The language to practise."},
        "상황": {
            "default": "스타벅스에서 커피를 주문하는 상황",
            "description": "The situation to role-play.",
        },
        "레벨": {"default": "초급", "description": "The learner's level."},
    },
}

ASSISTANT: dict[str, Any] = {
    "slug": "assistant",
    "name": "Assistant with tools",
    "description": "A general assistant that can calculate, tell the time, and draw tables "
    "and charts.",
    "system_prompt_template": (
        "You are a helpful, concise assistant. Use the tools when they help: the "
        "calculator for arithmetic, current_time for dates and times, "
        "multiplication_table for tables, and bar_chart to draw charts. Answer in "
        "the user's language."
    ),
    "first_user_message_template": "",
    "model": "gpt-4o",
    "temperature": 0.3,
    "tools": ["calculator", "current_time", "multiplication_table", "bar_chart"],
    "context_schema": {},
}


SEED_AGENTS = (LANGUAGE_TUTOR, ASSISTANT)


def install_seed_agents(agent_model: Any) -> None:
    """Create or refresh the seed agents using `agent_model` (a real or historical model)."""
    for spec in SEED_AGENTS:
        agent_model.objects.update_or_create(slug=spec["slug"], defaults=spec)
