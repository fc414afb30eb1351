"""drop rollup periods: since the release ledger (issue 16) no report reads the precomputed
weeks and months; exact-mode reports read the frozen daily basis, which the scheduler's
`release_basis` job freezes in advance, and their answers are replayed from the ledger

Revision ID: 0018_drop_rollup_periods
Revises: 0017_citus_shards
Create Date: 2026-12-02
"""

import importlib

from alembic import op

revision = "0018_drop_rollup_periods"
down_revision = "0017_citus_shards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS rollup_period_cells")
    op.execute("DROP TABLE IF EXISTS rollup_periods")


def downgrade() -> None:
    # the tables as 0009 made them (empty: the scheduler of that version builds them again)
    importlib.import_module("govern.migrations.versions.0009_rollup_periods").upgrade()
