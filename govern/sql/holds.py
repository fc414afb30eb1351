"""Legal hold SQL."""

from sqlalchemy import text

_COLUMNS = "hold_id, subject_id, reason, starts_at, ends_at, created_at, created_by"

# in force now: on the subject, or on the whole tenant (subject_id NULL)
IS_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM legal_holds WHERE tenant_id = :t "
    "AND (subject_id IS NULL OR subject_id = :s)"
    " AND starts_at <= :now AND (ends_at IS NULL OR ends_at > :now))")

CREATE_HOLD = text(
    f"INSERT INTO legal_holds (tenant_id, hold_id, subject_id, reason, starts_at, ends_at, "
    f"created_by) VALUES (:t, :h, :s, :r, :start, :end, :actor) RETURNING {_COLUMNS}")

LIST_HOLDS = text(
    f"SELECT {_COLUMNS} FROM legal_holds WHERE tenant_id = :t "
    "AND (CAST(:s AS uuid) IS NULL OR subject_id = :s)"
    " ORDER BY starts_at DESC")

GET_HOLD = text(f"SELECT {_COLUMNS} FROM legal_holds WHERE tenant_id = :t AND hold_id = :h")

END_HOLD = text("UPDATE legal_holds SET ends_at = :e WHERE tenant_id = :t AND hold_id = :h")
