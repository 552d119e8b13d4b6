"""deliveries.remote_id wide enough for any service's post id (Bluesky's at:// URIs run past 64)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('remote_id', existing_type=sa.String(length=64), type_=sa.String(length=512),
                              existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('remote_id', existing_type=sa.String(length=512), type_=sa.String(length=64),
                              existing_nullable=True)
