"""Data subject rights SQL: requests, erasure, the access bundle and disclosures."""

from sqlalchemy import text

# ---- requests -------------------------------------------------------------------------------

_REQUEST_COLUMNS = ("request_id, subject_id, kind, status, source, received_at, due_at, "
                    "completed_at, note, evidence, created_by")

CREATE_REQUEST = text(
    f"INSERT INTO subject_requests (tenant_id, request_id, subject_id, kind, source, "
    f"received_at, due_at, note, created_by) VALUES (:t, :r, :s, :k, :src, :received, "
    f":due, :note, :actor) RETURNING {_REQUEST_COLUMNS}")

GET_REQUEST = text(f"SELECT {_REQUEST_COLUMNS} FROM subject_requests "
                   "WHERE tenant_id = :t AND request_id = :r")

# every filter optional: a NULL parameter does not filter
LIST_REQUESTS = text(
    f"SELECT {_REQUEST_COLUMNS} FROM subject_requests WHERE tenant_id = :t "
    "AND (CAST(:status AS text) IS NULL OR status = :status) "
    "AND (CAST(:s AS uuid) IS NULL OR subject_id = :s) "
    "AND (NOT CAST(:overdue AS boolean) OR (status = 'open' AND due_at < :now)) "
    "ORDER BY due_at")

COMPLETE_REQUEST = text(
    "UPDATE subject_requests SET status = :st, completed_at = now(), "
    "evidence = CAST(:e AS jsonb) WHERE tenant_id = :t AND request_id = :r")

# ---- erasure --------------------------------------------------------------------------------

# stop collection first, so nothing new arrives while the subject's data is deleted
BLOCK_FOR_ERASURE = text("UPDATE subjects SET collection_blocked = true, "
                         "blocked_reason = 'erasure in progress' "
                         "WHERE tenant_id = :t AND subject_id = :s")
REVOKE_DEVICE_TOKENS = text("UPDATE api_tokens SET revoked_at = now() WHERE tenant_id = :t "
                            "AND device_id IN (SELECT device_id FROM devices "
                            "WHERE tenant_id = :t AND subject_id = :s) "
                            "AND revoked_at IS NULL")

# one batch of the subject's pings (by primary key), so no transaction grows unbounded
DELETE_PINGS_BATCH = text(
    "WITH doomed AS (SELECT tenant_id, device_id, t, client_key FROM pings "
    "WHERE tenant_id = :t AND subject_id = :s LIMIT :n) DELETE FROM pings p USING doomed d "
    "WHERE p.tenant_id = :t AND p.tenant_id = d.tenant_id AND p.device_id = d.device_id "
    "AND p.t = d.t AND p.client_key = d.client_key")

TABLE_EXISTS = text("SELECT to_regclass(:t) IS NOT NULL")

# tables that may be absent (built by the trips feature): checked with TABLE_EXISTS first
DELETE_SUBJECT_ROWS = {table: text(f"DELETE FROM {table} "
                                   "WHERE tenant_id = :t AND subject_id = :s")
                       for table in ("trips", "stops")}

DELETE_DEVICE_TOKENS = text(
    "DELETE FROM api_tokens WHERE tenant_id = :t AND device_id IN (SELECT device_id "
    "FROM devices WHERE tenant_id = :t AND subject_id = :s)")
# the subject's devices, whose tenant-less OsmAnd routes are retired before they go
SUBJECT_DEVICE_IDS = text("SELECT device_id FROM devices WHERE tenant_id = :t AND subject_id = :s")
DELETE_DEVICES = text("DELETE FROM devices WHERE tenant_id = :t AND subject_id = :s")
DELETE_ZONES = text("DELETE FROM zones WHERE tenant_id = :t AND subject_id = :s")
DELETE_DUTY_EVENTS = text("DELETE FROM duty_events WHERE tenant_id = :t AND subject_id = :s")
# the ledger is append-only to the app role; only this SECURITY DEFINER function erases it
ERASE_CONSENT_LEDGER = text("SELECT govern_erase_consent_ledger(:s)")

SCRUB_SUBJECT = text(
    "UPDATE subjects SET external_ref = 'erased-' || subject_id::text, "
    "display_name = NULL, collection_windows = NULL, collection_blocked = true, "
    "blocked_reason = 'erased', erased_at = :now WHERE tenant_id = :t AND subject_id = :s")

INSERT_TOMBSTONE = text(
    "INSERT INTO erasure_tombstones (tenant_id, subject_id, erased_at, erased_by, "
    "request_id, counts, consent_ledger_kept) VALUES (:t, :s, :now, :actor, :r, "
    "CAST(:c AS jsonb), :kept)")

TOMBSTONES = text(
    "SELECT subject_id, erased_at, erased_by, request_id, counts, consent_ledger_kept "
    "FROM erasure_tombstones WHERE tenant_id = :t "
    "AND (CAST(:s AS uuid) IS NULL OR subject_id = :s) "
    "ORDER BY erased_at DESC")

# ---- access: the export bundle ----------------------------------------------------------------

# What the subject is not told, by one definition the bundle and its counts share.
# A disclosure stays out of the subject's bundle while a non-notification order stands
# (`not_notified_reason` given and no `notified_at` yet): telling the subject would breach
# it. Once notice is recorded, the disclosure and its audit entries appear in full. A legal
# hold shows with its period but not its reason, which may name an investigation.
WITHHELD_DISCLOSURES = ("SELECT disclosure_id FROM disclosures WHERE tenant_id = :t "
                        "AND :s = ANY(subject_ids) "
                        "AND not_notified_reason IS NOT NULL AND notified_at IS NULL")
_SUBJECT_DISCLOSURES = (f"FROM disclosures WHERE tenant_id = :t AND :s = ANY(subject_ids) "
                        f"AND disclosure_id NOT IN ({WITHHELD_DISCLOSURES})")
_SUBJECT_ACCESS_LOG = (f"FROM audit_log WHERE tenant_id = :t AND subject_id = :s "
                       f"AND NOT (action LIKE "
                       f"'disclosure.%' AND target_id IN (SELECT CAST(disclosure_id AS text) "
                       f"FROM ({WITHHELD_DISCLOSURES}) w))")

TENANT_NAME = text("SELECT name FROM tenants WHERE tenant_id = :t")
HAS_TRIPS = text("SELECT to_regclass('trips') IS NOT NULL")
EXPORT_DEVICES = text(
    "SELECT device_id, identifier, name, platform, created_at, revoked_at, "
    "last_seen_at FROM devices WHERE tenant_id = :t AND subject_id = :s")
EXPORT_HOLDS = text(
    "SELECT hold_id, starts_at, ends_at FROM legal_holds "
    "WHERE tenant_id = :t AND (subject_id = :s OR subject_id IS NULL)")
PURPOSE_BITS = text("SELECT bit, key FROM purposes WHERE tenant_id = :t")
# read with a server-side cursor (yield_per) by the caller: a subject may have millions
EXPORT_PINGS = text(
    "SELECT t, ST_X(geom) AS lon, ST_Y(geom) AS lat, precision_m, purpose_mask, "
    "acc, alt, speed, heading, battery, activity, received_at, server_time "
    "FROM pings "
    "WHERE tenant_id = :t AND subject_id = :s ORDER BY t")
EXPORT_CONSENTS = text(
    "SELECT p.key AS purpose, c.status, c.at, c.recorded_at, c.policy_version, "
    "c.source, c.evidence FROM consent_events c JOIN purposes p USING "
    "(tenant_id, purpose_id) WHERE c.tenant_id = :t AND p.tenant_id = :t "
    "AND c.subject_id = :s ORDER BY c.at, c.seq")
EXPORT_ACCESS_LOG = text(
    "SELECT at, actor_id, action, details->>'purpose' AS purpose, "
    "CASE WHEN action LIKE 'legal_hold.%' THEN details - 'reason' ELSE details END "
    f"AS details {_SUBJECT_ACCESS_LOG} ORDER BY seq")
EXPORT_DISCLOSURES = text(
    "SELECT disclosure_id, authority, legal_basis, range_from, range_to, description, "
    f"disclosed_at, notified_at, not_notified_reason {_SUBJECT_DISCLOSURES} "
    "ORDER BY disclosed_at")
EXPORT_SUBJECT_ROWS = {table: text(f"SELECT * FROM {table} "
                                   "WHERE tenant_id = :t AND subject_id = :s "
                                   "ORDER BY started_at")
                       for table in ("trips", "stops")}
EXPORT_COUNTS = text(
    "SELECT (SELECT count(*) FROM pings WHERE tenant_id = :t AND subject_id = :s) AS pings, "
    "(SELECT count(*) FROM consent_events WHERE tenant_id = :t AND subject_id = :s) "
    "AS consent_events, "
    f"(SELECT count(*) {_SUBJECT_ACCESS_LOG}) AS access_log_entries, "
    f"(SELECT count(*) {_SUBJECT_DISCLOSURES}) AS disclosures")

# ---- disclosures ----------------------------------------------------------------------------

_DISCLOSURE_COLUMNS = ("disclosure_id, authority, legal_basis, subject_ids, range_from, "
                       "range_to, description, disclosed_at, notified_at, "
                       "not_notified_reason, created_at, created_by")

CREATE_DISCLOSURE = text(
    f"INSERT INTO disclosures (tenant_id, disclosure_id, authority, legal_basis, "
    f"subject_ids, range_from, range_to, description, disclosed_at, notified_at, "
    f"not_notified_reason, created_by) VALUES (:t, :d, :authority, :legal_basis, "
    f"CAST(:subject_ids AS uuid[]), :range_from, :range_to, :description, :disclosed_at, "
    f":notified_at, :not_notified_reason, :actor) RETURNING {_DISCLOSURE_COLUMNS}")

# notice can be recorded later; neither field is ever cleared
UPDATE_DISCLOSURE = text(
    "UPDATE disclosures SET notified_at = coalesce(:n, notified_at), "
    "not_notified_reason = coalesce(:r, not_notified_reason) "
    "WHERE tenant_id = :t AND disclosure_id = :d")

GET_DISCLOSURE = text(f"SELECT {_DISCLOSURE_COLUMNS} FROM disclosures "
                      "WHERE tenant_id = :t AND disclosure_id = :d")

LIST_DISCLOSURES = text(
    f"SELECT {_DISCLOSURE_COLUMNS} FROM disclosures "
    "WHERE tenant_id = :t AND (CAST(:s AS uuid) IS NULL OR :s = ANY(subject_ids)) "
    "ORDER BY disclosed_at DESC")
