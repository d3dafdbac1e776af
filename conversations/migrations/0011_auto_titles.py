"""Automatic titles (conversations/titles): who wrote a conversation's title, and when its
one title generation was attempted.

Conversations that exist already are not titled after the fact: a non-empty title is
counted as the user's, and a conversation with messages has had its first reply, so its
attempt is marked as spent (a deploy must not start a title call per old conversation)."""

from django.db import migrations, models
from django.db.models import Q
from django.utils import timezone


def mark_existing(apps, schema_editor):
    Conversation = apps.get_model("conversations", "Conversation")
    Conversation.objects.exclude(title="").update(title_source="user")
    Conversation.objects.filter(Q(message_count__gt=0) | ~Q(title="")).update(
        title_attempted_at=timezone.now()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0010_organize_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="title_attempted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="conversation",
            name="title_source",
            field=models.CharField(
                blank=True,
                choices=[("", "Nobody yet"), ("user", "The user"), ("auto", "Generated")],
                default="",
                max_length=8,
            ),
        ),
        migrations.RunPython(mark_existing, migrations.RunPython.noop),
    ]
