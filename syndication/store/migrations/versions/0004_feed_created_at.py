"""feed_state.created_at: when each feed first appeared, for the cap on new feeds per hour

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feed_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_feed_state_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('feed_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_state_created_at'))
        batch_op.drop_column('created_at')
