"""The full-text index of pairs (corpus/search.py): a document per pair, kept by triggers.

PostgreSQL gets `corpus_pair_search` (tsvector + GIN) with statement-level triggers, so the
importers' COPY indexes a batch in one statement; SQLite gets the FTS5 table
`corpus_pair_fts` with row triggers. Existing pairs are indexed here, so the migration works
on a fresh database and on one that already holds data. No model: the tables are read
through raw SQL in corpus/search.py, and no foreign key points at `annotation_pair` (a
test flush TRUNCATEs it; a TRUNCATE trigger empties the index with it).
"""

from django.db import migrations

N = 100_000  # characters of each text indexed (corpus.search.INDEXED_CHARS)

PG_DOCUMENT = f"""
to_tsvector('english',
    coalesce(left(pr.text, {N}), '') || ' ' || coalesce(left(ra.text, {N}), '') || ' '
    || coalesce(left(rb.text, {N}), ''))
"""
PG_JOIN = """
JOIN annotation_prompt pr ON pr.id = p.prompt_id
JOIN annotation_response ra ON ra.id = p.response_a_id
JOIN annotation_response rb ON rb.id = p.response_b_id
"""

PG_FORWARD = [
    """
    CREATE TABLE corpus_pair_search (
        pair_id bigint PRIMARY KEY,
        document tsvector NOT NULL
    )
    """,
    "CREATE INDEX corpus_pair_search_document ON corpus_pair_search USING gin (document)",
    f"""
    CREATE FUNCTION corpus_pair_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO corpus_pair_search (pair_id, document)
        SELECT p.id, {PG_DOCUMENT} FROM new_pairs p {PG_JOIN}
        ON CONFLICT (pair_id) DO UPDATE SET document = EXCLUDED.document;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER corpus_pair_search_insert AFTER INSERT ON annotation_pair
    REFERENCING NEW TABLE AS new_pairs FOR EACH STATEMENT
    EXECUTE FUNCTION corpus_pair_search_insert()
    """,
    f"""
    CREATE FUNCTION corpus_pair_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE corpus_pair_search s SET document = {PG_DOCUMENT}
        FROM new_pairs p {PG_JOIN} JOIN old_pairs o ON o.id = p.id
        WHERE s.pair_id = p.id AND (o.prompt_id, o.response_a_id, o.response_b_id)
            IS DISTINCT FROM (p.prompt_id, p.response_a_id, p.response_b_id);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER corpus_pair_search_update AFTER UPDATE ON annotation_pair
    REFERENCING OLD TABLE AS old_pairs NEW TABLE AS new_pairs FOR EACH STATEMENT
    EXECUTE FUNCTION corpus_pair_search_update()
    """,
    """
    CREATE FUNCTION corpus_pair_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM corpus_pair_search WHERE pair_id IN (SELECT id FROM old_pairs);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER corpus_pair_search_delete AFTER DELETE ON annotation_pair
    REFERENCING OLD TABLE AS old_pairs FOR EACH STATEMENT
    EXECUTE FUNCTION corpus_pair_search_delete()
    """,
    """
    CREATE FUNCTION corpus_pair_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE corpus_pair_search;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER corpus_pair_search_truncate AFTER TRUNCATE ON annotation_pair
    FOR EACH STATEMENT EXECUTE FUNCTION corpus_pair_search_truncate()
    """,
    # A text given or changed after its pairs exist: re-index those pairs.
    f"""
    CREATE FUNCTION corpus_pair_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'annotation_prompt' THEN
            UPDATE corpus_pair_search s SET document = {PG_DOCUMENT}
            FROM annotation_pair p {PG_JOIN}
            WHERE s.pair_id = p.id AND p.prompt_id IN (
                SELECT n.id FROM new_texts n JOIN old_texts o ON o.id = n.id
                WHERE n.text IS DISTINCT FROM o.text);
        ELSE
            UPDATE corpus_pair_search s SET document = {PG_DOCUMENT}
            FROM annotation_pair p {PG_JOIN}
            WHERE s.pair_id = p.id AND (p.response_a_id IN (
                SELECT n.id FROM new_texts n JOIN old_texts o ON o.id = n.id
                WHERE n.text IS DISTINCT FROM o.text) OR p.response_b_id IN (
                SELECT n.id FROM new_texts n JOIN old_texts o ON o.id = n.id
                WHERE n.text IS DISTINCT FROM o.text));
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER corpus_pair_search_prompt AFTER UPDATE ON annotation_prompt
    REFERENCING OLD TABLE AS old_texts NEW TABLE AS new_texts FOR EACH STATEMENT
    EXECUTE FUNCTION corpus_pair_search_text()
    """,
    """
    CREATE TRIGGER corpus_pair_search_response AFTER UPDATE ON annotation_response
    REFERENCING OLD TABLE AS old_texts NEW TABLE AS new_texts FOR EACH STATEMENT
    EXECUTE FUNCTION corpus_pair_search_text()
    """,
    f"""
    INSERT INTO corpus_pair_search (pair_id, document)
    SELECT p.id, {PG_DOCUMENT} FROM annotation_pair p {PG_JOIN}
    """,
]

PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS corpus_pair_search_response ON annotation_response",
    "DROP TRIGGER IF EXISTS corpus_pair_search_prompt ON annotation_prompt",
    "DROP TRIGGER IF EXISTS corpus_pair_search_truncate ON annotation_pair",
    "DROP TRIGGER IF EXISTS corpus_pair_search_delete ON annotation_pair",
    "DROP TRIGGER IF EXISTS corpus_pair_search_update ON annotation_pair",
    "DROP TRIGGER IF EXISTS corpus_pair_search_insert ON annotation_pair",
    "DROP FUNCTION IF EXISTS corpus_pair_search_text()",
    "DROP FUNCTION IF EXISTS corpus_pair_search_truncate()",
    "DROP FUNCTION IF EXISTS corpus_pair_search_delete()",
    "DROP FUNCTION IF EXISTS corpus_pair_search_update()",
    "DROP FUNCTION IF EXISTS corpus_pair_search_insert()",
    "DROP TABLE IF EXISTS corpus_pair_search",
]

SQLITE_PROMPT = f"(SELECT substr(coalesce(text, ''), 1, {N}) FROM annotation_prompt WHERE id = {{p}}.prompt_id)"
SQLITE_RESPONSES = (
    f"(SELECT substr(coalesce(text, ''), 1, {N}) FROM annotation_response WHERE id = {{p}}.response_a_id)"
    f" || ' ' || (SELECT substr(coalesce(text, ''), 1, {N}) FROM annotation_response WHERE id = {{p}}.response_b_id)"
)


def _sqlite_values(p: str) -> str:
    return f"{SQLITE_PROMPT.format(p=p)}, {SQLITE_RESPONSES.format(p=p)}"


SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE corpus_pair_fts USING fts5(prompt, responses, tokenize = 'porter unicode61')",
    f"""
    CREATE TRIGGER corpus_pair_fts_insert AFTER INSERT ON annotation_pair BEGIN
        INSERT INTO corpus_pair_fts (rowid, prompt, responses) VALUES (NEW.id, {_sqlite_values("NEW")});
    END
    """,
    f"""
    CREATE TRIGGER corpus_pair_fts_update
    AFTER UPDATE OF prompt_id, response_a_id, response_b_id ON annotation_pair BEGIN
        DELETE FROM corpus_pair_fts WHERE rowid = OLD.id;
        INSERT INTO corpus_pair_fts (rowid, prompt, responses) VALUES (NEW.id, {_sqlite_values("NEW")});
    END
    """,
    """
    CREATE TRIGGER corpus_pair_fts_delete AFTER DELETE ON annotation_pair BEGIN
        DELETE FROM corpus_pair_fts WHERE rowid = OLD.id;
    END
    """,
    f"""
    CREATE TRIGGER corpus_pair_fts_prompt AFTER UPDATE OF text ON annotation_prompt
    WHEN NEW.text IS NOT OLD.text BEGIN
        DELETE FROM corpus_pair_fts WHERE rowid IN (SELECT id FROM annotation_pair WHERE prompt_id = NEW.id);
        INSERT INTO corpus_pair_fts (rowid, prompt, responses)
        SELECT p.id, {_sqlite_values("p")} FROM annotation_pair p WHERE p.prompt_id = NEW.id;
    END
    """,
    f"""
    CREATE TRIGGER corpus_pair_fts_response AFTER UPDATE OF text ON annotation_response
    WHEN NEW.text IS NOT OLD.text BEGIN
        DELETE FROM corpus_pair_fts WHERE rowid IN (
            SELECT id FROM annotation_pair WHERE response_a_id = NEW.id OR response_b_id = NEW.id);
        INSERT INTO corpus_pair_fts (rowid, prompt, responses)
        SELECT p.id, {_sqlite_values("p")} FROM annotation_pair p
        WHERE p.response_a_id = NEW.id OR p.response_b_id = NEW.id;
    END
    """,
    f"""
    INSERT INTO corpus_pair_fts (rowid, prompt, responses)
    SELECT p.id, {_sqlite_values("p")} FROM annotation_pair p
    """,
]

SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS corpus_pair_fts_response",
    "DROP TRIGGER IF EXISTS corpus_pair_fts_prompt",
    "DROP TRIGGER IF EXISTS corpus_pair_fts_delete",
    "DROP TRIGGER IF EXISTS corpus_pair_fts_update",
    "DROP TRIGGER IF EXISTS corpus_pair_fts_insert",
    "DROP TABLE IF EXISTS corpus_pair_fts",
]

SQL = {
    "postgresql": (PG_FORWARD, PG_BACKWARD),
    "sqlite": (SQLITE_FORWARD, SQLITE_BACKWARD),
}


def _run(schema_editor, forward: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in SQL:
        raise RuntimeError(f"pair search: no full-text index for the {vendor} database")
    for statement in SQL[vendor][0 if forward else 1]:
        schema_editor.execute(statement, params=None)


def forward(apps, schema_editor) -> None:
    _run(schema_editor, True)


def backward(apps, schema_editor) -> None:
    _run(schema_editor, False)


class Migration(migrations.Migration):
    dependencies = [("corpus", "0003_job_lease")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
