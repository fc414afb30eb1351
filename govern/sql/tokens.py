"""Token SQL: authenticating a bearer token and recording its use."""

from sqlalchemy import text

# The principal behind a token hash, scoped to the token's own tenant: a removed member or
# a revoked device yields NULL role / subject, which authentication refuses.
TOKEN_LOOKUP = text(
    """
    SELECT t.token_id, t.kind, t.member_id, m.role, t.device_id, d.subject_id,
           t.last_used_at
    FROM api_tokens t
    LEFT JOIN members m ON m.tenant_id = t.tenant_id AND m.member_id = t.member_id
                        AND m.removed_at IS NULL
    LEFT JOIN devices d ON d.tenant_id = t.tenant_id AND d.device_id = t.device_id
                        AND d.revoked_at IS NULL
    WHERE t.tenant_id = :tenant_id AND t.token_hash = :token_hash
      AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now())
    """
)

# Token use and device contact are recorded on a connection of their own (its own short
# transaction), so they stick even when the request itself only reads or fails.
TOUCH_TOKEN = text("UPDATE api_tokens SET last_used_at = now() "
                   "WHERE tenant_id = :t AND token_id = :id")
TOUCH_DEVICE = text("UPDATE devices SET last_seen_at = now() "
                    "WHERE tenant_id = :t AND device_id = :id")
