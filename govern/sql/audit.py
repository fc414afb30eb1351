"""Reading the audit log with names: members, devices and subjects are resolved from their
current rows at read time (the chain stores ids only, so an erased subject's reference is
gone from every later view of the log). Every table names the tenant (`:tenant_id`): Citus
routes each statement to the tenant's shard, and refuses these joins (not on the
distribution column) across shards."""

from sqlalchemy import text

_ENTRIES = """
    SELECT a.seq, a.at, a.actor_kind, a.actor_id, a.action, a.target_type, a.target_id,
           a.subject_id, a.request_id, a.details, encode(a.hash, 'hex') AS hash,
           m.email AS actor_email, coalesce(m.display_name, d.identifier) AS actor_name,
           s.external_ref AS subject_ref,
           CASE a.target_type WHEN 'member' THEN tm.email WHEN 'subject' THEN ts.external_ref
                WHEN 'device' THEN td.identifier END AS target_label
    FROM audit_log a
    LEFT JOIN members m ON m.tenant_id = :tenant_id AND a.actor_kind = 'member'
                       AND a.actor_id = 'member:' || m.member_id
    LEFT JOIN devices d ON d.tenant_id = :tenant_id AND a.actor_kind = 'device'
                       AND a.actor_id = 'device:' || d.device_id
    LEFT JOIN subjects s ON s.tenant_id = :tenant_id AND s.subject_id = a.subject_id
    LEFT JOIN members tm ON tm.tenant_id = :tenant_id AND a.target_type = 'member'
                        AND a.target_id = tm.member_id::text
    LEFT JOIN subjects ts ON ts.tenant_id = :tenant_id AND a.target_type = 'subject'
                         AND a.target_id = ts.subject_id::text
    LEFT JOIN devices td ON td.tenant_id = :tenant_id AND a.target_type = 'device'
                        AND a.target_id = td.device_id::text
    WHERE a.tenant_id = :tenant_id
      AND (CAST(:f AS timestamptz) IS NULL OR a.at >= :f)
      AND (CAST(:t AS timestamptz) IS NULL OR a.at < :t)
      AND (CAST(:actor AS text) IS NULL OR a.actor_id = :actor)
      AND (CAST(:action AS text) IS NULL OR a.action = :action
           OR a.action LIKE CAST(:action AS text) || '.%')
      AND (CAST(:subject AS uuid) IS NULL OR a.subject_id = :subject)
      -- by name: a case-insensitive part of a member's email or name, a subject's reference
      AND (CAST(:member AS text) IS NULL
           OR strpos(lower(m.email), lower(:member)) > 0
           OR strpos(lower(coalesce(m.display_name, '')), lower(:member)) > 0)
      AND (CAST(:subject_ref AS text) IS NULL
           OR strpos(lower(s.external_ref), lower(:subject_ref)) > 0)
      AND (CAST(:after AS bigint) IS NULL OR {after})
    ORDER BY a.seq {order}
    LIMIT :limit
"""

ENTRIES_ASC = text(_ENTRIES.format(after="a.seq > :after", order="ASC"))
ENTRIES_DESC = text(_ENTRIES.format(after="a.seq < :after", order="DESC"))

VERIFY = text(
    """
    WITH chain AS (
      SELECT a.seq,
             a.hash = govern_audit_hash(a) AS hash_ok,
             a.prev_hash = coalesce(lag(a.hash) OVER (ORDER BY a.seq), '\\x'::bytea) AS link_ok,
             a.seq = row_number() OVER (ORDER BY a.seq) AS seq_ok,
             a.hash
      FROM audit_log a WHERE a.tenant_id = :tenant_id
    )
    SELECT
      count(*) AS entries,
      (SELECT min(seq) FROM chain WHERE NOT (hash_ok AND link_ok AND seq_ok)) AS first_bad,
      (SELECT hash FROM chain ORDER BY seq DESC LIMIT 1) AS head
    FROM chain
    """
)

BAD_DETAIL = text(
    """
    WITH chain AS (
      SELECT a.seq, a.hash = govern_audit_hash(a) AS hash_ok,
             a.prev_hash = coalesce(lag(a.hash) OVER (ORDER BY a.seq), '\\x'::bytea) AS link_ok,
             a.seq = row_number() OVER (ORDER BY a.seq) AS seq_ok
      FROM audit_log a WHERE a.tenant_id = :tenant_id
    )
    SELECT * FROM chain WHERE seq = :seq
    """
)
