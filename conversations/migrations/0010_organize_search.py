"""Full-text search (conversations/search): on PostgreSQL a generated `search_vector`
column (`confab_search_vector(text)`, stored) with a GIN index; on SQLite an FTS5 table
kept by triggers. The generated column is not a model field: history pages and the ORM
name the model's columns, and the database alone writes it."""

from django.db import DatabaseError, migrations, transaction

from conversations.search.text import CJK_CLASS

TABLE = "conversations_conversationmessage"
FTS = "conversations_message_fts"

POSTGRES = [
    # Every CJK run as overlapping character bigrams (a lone character as itself), in
    # text order: consecutive bigrams get consecutive positions, so phrases match.
    rf"""
    CREATE OR REPLACE FUNCTION confab_cjk_bigrams(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
      SELECT coalesce(string_agg(substr(m.run[1], i, 2), ' ' ORDER BY m.ord, i), '')
      FROM regexp_matches(t, '([{CJK_CLASS}]+)', 'g') WITH ORDINALITY AS m(run, ord),
           generate_series(1, greatest(char_length(m.run[1]) - 1, 1)) AS i
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION confab_search_vector(t text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT to_tsvector('simple'::regconfig, coalesce(t, ''))
          || to_tsvector('simple'::regconfig, coalesce(confab_cjk_bigrams(t), ''))
    $$
    """,
    f'ALTER TABLE "{TABLE}" ADD COLUMN IF NOT EXISTS search_vector tsvector '
    'GENERATED ALWAYS AS (confab_search_vector("text")) STORED',
    # The owner and the words in one GIN index (btree_gin): a rare word of one user's
    # is one posting-list intersection (0.3 ms on the benchmark's 1,000,000 messages)
    # instead of AND-ing a bitmap of all the user's messages (22 ms). Without the
    # extension (no right to create it), the words alone.
    (
        "CREATE EXTENSION IF NOT EXISTS btree_gin",
        f'CREATE INDEX IF NOT EXISTS msg_search ON "{TABLE}" USING GIN (user_id, search_vector)',
    ),
    f'CREATE INDEX IF NOT EXISTS msg_search ON "{TABLE}" USING GIN (search_vector)',
]
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS msg_search",
    f'ALTER TABLE "{TABLE}" DROP COLUMN IF EXISTS search_vector',
    "DROP FUNCTION IF EXISTS confab_search_vector(text)",
    "DROP FUNCTION IF EXISTS confab_cjk_bigrams(text)",
]

SQLITE = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS} USING fts5(body, tokenize='unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER IF NOT EXISTS msg_fts_insert AFTER INSERT ON "{TABLE}" BEGIN
        INSERT INTO {FTS}(rowid, body) VALUES (new.id, confab_search_text(new.text));
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS msg_fts_update AFTER UPDATE OF "text" ON "{TABLE}"
    WHEN old.text IS NOT new.text BEGIN
        UPDATE {FTS} SET body = confab_search_text(new.text) WHERE rowid = new.id;
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS msg_fts_delete AFTER DELETE ON "{TABLE}" BEGIN
        DELETE FROM {FTS} WHERE rowid = old.id;
    END""",
    f'INSERT INTO {FTS}(rowid, body) SELECT id, confab_search_text("text") FROM "{TABLE}"',
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS msg_fts_insert",
    "DROP TRIGGER IF EXISTS msg_fts_update",
    "DROP TRIGGER IF EXISTS msg_fts_delete",
    f"DROP TABLE IF EXISTS {FTS}",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        statements = statements_by_vendor.get(connection.vendor)
        if statements is None:
            return
        if connection.vendor == "sqlite":
            from conversations.search.sqlite import register

            connection.ensure_connection()
            register(connection.connection)
        skip_fallback = False
        with connection.cursor() as cursor:
            for statement in statements:
                if isinstance(statement, tuple):  # optional: the next statement is the fallback
                    try:
                        with transaction.atomic(using=connection.alias):
                            for part in statement:
                                cursor.execute(part)
                        skip_fallback = True
                    except DatabaseError:
                        skip_fallback = False
                    continue
                if skip_fallback:
                    skip_fallback = False
                    continue
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("conversations", "0009_organize")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}),
        )
    ]
