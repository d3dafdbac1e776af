"""Messages become a tree (conversations/tree.py): every existing conversation is one
chain, each message's parent the previous message by id, its last message the active
leaf. Set-based, one statement per table (PostgreSQL and SQLite >= 3.33 both take
UPDATE ... FROM and window functions); run before the new indexes exist, so the
UPDATE maintains none of them. Timed on the bench's 1,000,000 messages: bench/BENCHMARKS.md.
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# SQLite adds these columns by rebuilding the messages table, which drops the triggers
# that keep the full-text index (0010) in step: they are created again, from 0010's own
# statements (the FTS table and its rows are untouched, the ids kept).
SEARCH = importlib.import_module("conversations.migrations.0010_organize_search")
SEARCH_TRIGGERS = [
    statement for statement in SEARCH.SQLITE if statement.lstrip().startswith("CREATE TRIGGER")
]


def restore_search_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        for statement in SEARCH_TRIGGERS:
            cursor.execute(statement)

CHAIN_MESSAGES = """
UPDATE "conversations_conversationmessage" AS m SET "parent_id" = chain."previous"
  FROM (SELECT "id", LAG("id") OVER (PARTITION BY "conversation_id" ORDER BY "id") AS "previous"
          FROM "conversations_conversationmessage") AS chain
 WHERE m."id" = chain."id" AND chain."previous" IS NOT NULL
"""

ACTIVE_LEAVES = """
UPDATE "conversations_conversation" SET "active_leaf_id" = (
  SELECT MAX(m."id") FROM "conversations_conversationmessage" AS m
   WHERE m."conversation_id" = "conversations_conversation"."id")
"""


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0014_shares'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='conversation',
            name='active_leaf_id',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='conversationmessage',
            name='on_path',
            field=models.BooleanField(db_default=True, default=True),
        ),
        migrations.AddField(
            model_name='conversationmessage',
            name='parent',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='conversations.conversationmessage'),
        ),
        migrations.AddField(
            model_name='conversationmessage',
            name='sibling_ids',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunSQL(CHAIN_MESSAGES, migrations.RunSQL.noop, elidable=False),
        migrations.RunSQL(ACTIVE_LEAVES, migrations.RunSQL.noop, elidable=False),
        migrations.AddIndex(
            model_name='conversationmessage',
            index=models.Index(condition=models.Q(('on_path', True)), fields=['conversation', 'id'], name='msg_active_path'),
        ),
        migrations.AddIndex(
            model_name='conversationmessage',
            index=models.Index(fields=['parent', 'id'], name='msg_parent'),
        ),
        migrations.AddIndex(
            model_name='conversationmessage',
            index=models.Index(condition=models.Q(('parent__isnull', True)), fields=['conversation', 'id'], name='msg_roots'),
        ),
        migrations.RunPython(restore_search_triggers, migrations.RunPython.noop, elidable=False),
    ]
