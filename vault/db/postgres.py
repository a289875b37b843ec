"""What only a PostgreSQL vault has: the audit chain's head row, the functions that
lock it and append after it, and the trigger that keeps every append on the chain
(schema version 4 on; docs/format.md and SECURITY.md describe the roles).

SQLite needs none of it: a writer there holds the whole file (``BEGIN IMMEDIATE``),
and a bot of the shared layout appends to an audit file of its own.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from vault.db.queries import AUDIT_APPEND_ARGUMENTS, AUDIT_APPEND_FUNCTION
from vault.db.tables import POSTGRESQL_METADATA
from vault.format.audit_entry import AUDIT_COLUMNS


def _postgresql_chain_ddl(schema: str) -> list[str]:
    # SECURITY DEFINER functions run as the tables' owner: pinning search_path to the
    # vault's schema keeps a caller's own objects out of them. Only that quoted schema
    # name and exvault's own column names are interpolated below (hence the noqa).
    path = f"SET search_path = {schema}, pg_temp"
    columns = ", ".join(AUDIT_COLUMNS)
    arguments = ", ".join(f"p_{name} {kind}" for name, kind in AUDIT_APPEND_ARGUMENTS)
    values = ", ".join(f"p_{name}" for name, _kind in AUDIT_APPEND_ARGUMENTS)
    return [
        # Locking the row FOR UPDATE needs UPDATE on the table, which only the owner has:
        # the reader takes it only through this function, so only inside a transaction,
        # never for a whole idle session as it could the advisory lock. (A hostile
        # reader can still make that transaction long: SECURITY.md, known limit 24.)
        "CREATE OR REPLACE FUNCTION exvault_lock_writes() RETURNS void "
        f"LANGUAGE plpgsql SECURITY DEFINER {path} AS $$ BEGIN "
        "PERFORM 1 FROM exvault_audit_head WHERE id = 1 FOR UPDATE; END $$",
        # Every insert, the owner's and the reader's: it must follow the head exactly.
        "CREATE OR REPLACE FUNCTION exvault_audit_chain() RETURNS trigger "  # noqa: S608
        f"LANGUAGE plpgsql SECURITY DEFINER {path} AS $$ "
        "DECLARE head_seq bigint; head_hash bytea; BEGIN "
        "SELECT seq, entry_hash INTO head_seq, head_hash FROM exvault_audit_head "
        "WHERE id = 1 FOR UPDATE; "
        "IF NOT FOUND OR NEW.seq IS DISTINCT FROM head_seq + 1 "
        "OR NEW.prev_hash IS DISTINCT FROM head_hash THEN "
        "RAISE EXCEPTION 'exvault: audit entry % does not follow the chain head %', "
        "NEW.seq, head_seq USING ERRCODE = '40001'; END IF; "
        "UPDATE exvault_audit_head SET seq = NEW.seq, entry_hash = NEW.entry_hash "
        "WHERE id = 1; RETURN NEW; END $$",
        "DROP TRIGGER IF EXISTS exvault_audit_chain ON audit_log",
        "CREATE TRIGGER exvault_audit_chain BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION exvault_audit_chain()",
        # The reader's only way to append (it has no INSERT on audit_log).
        f"CREATE OR REPLACE FUNCTION exvault_audit_append({arguments}) RETURNS void "  # noqa: S608
        f"LANGUAGE sql SECURITY DEFINER {path} AS $$ "
        f"INSERT INTO audit_log ({columns}) VALUES ({values}) $$",
        "REVOKE ALL ON FUNCTION exvault_lock_writes() FROM PUBLIC",
        "REVOKE ALL ON FUNCTION exvault_audit_chain() FROM PUBLIC",
        f"REVOKE ALL ON FUNCTION {AUDIT_APPEND_FUNCTION} FROM PUBLIC",
    ]


def install_audit_head(conn: Connection) -> None:
    """PostgreSQL: create the head row (from the chain's last entry), the lock and append
    functions and the trigger; hand every role that could INSERT into ``audit_log``
    (the reader) the functions, and SELECT on the head row, instead. Idempotent; does
    nothing on SQLite.

    The grants move so that the append function is the reader's only way in: an
    existing fleet is safe from the owner's first unlock on, before anyone re-runs the
    documented grants.
    """
    if conn.dialect.name != "postgresql":
        return
    POSTGRESQL_METADATA.create_all(conn, checkfirst=True)
    # The head is the end of the chain as it links from entry 1, not the row of highest
    # seq: before this version the reader could INSERT, so that row may be a forged one
    # (seq 2^31 - 1 stopped every append), and the head must not start from it.
    conn.exec_driver_sql(
        "WITH RECURSIVE chain (seq, entry_hash) AS ("
        " SELECT seq, entry_hash FROM audit_log"
        " WHERE seq = 1 AND prev_hash = decode(repeat('00', 32), 'hex')"
        " UNION ALL"
        " SELECT a.seq, a.entry_hash FROM audit_log a"
        " JOIN chain c ON a.seq = c.seq + 1 AND a.prev_hash = c.entry_hash),"
        " last AS (SELECT seq, entry_hash FROM chain ORDER BY seq DESC LIMIT 1) "
        "INSERT INTO exvault_audit_head (id, seq, entry_hash) "
        "SELECT 1, COALESCE((SELECT seq FROM last), 0), "
        "COALESCE((SELECT entry_hash FROM last), decode(repeat('00', 32), 'hex')) "
        "ON CONFLICT (id) DO NOTHING"
    )
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    quote = conn.dialect.identifier_preparer.quote_identifier
    for statement in _postgresql_chain_ddl(quote(schema)):
        conn.exec_driver_sql(statement.replace("%", "%%"))  # psycopg's placeholders
    inserters = conn.exec_driver_sql(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
        "WHERE table_schema = current_schema() AND table_name = 'audit_log' "
        "AND privilege_type = 'INSERT' AND grantee <> current_user"
    ).scalars()
    for grantee in list(inserters):
        if grantee == "PUBLIC":  # the keyword, not a role named so: grant nothing to all
            conn.exec_driver_sql("REVOKE INSERT ON audit_log FROM PUBLIC")
            continue
        role = quote(grantee)
        conn.exec_driver_sql(f"REVOKE INSERT ON audit_log FROM {role}")
        conn.exec_driver_sql(f"GRANT SELECT ON exvault_audit_head TO {role}")
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION exvault_lock_writes() TO {role}")
        conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {AUDIT_APPEND_FUNCTION} TO {role}")


__all__ = ["install_audit_head"]
