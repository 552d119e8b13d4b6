"""hub ping outbox, feed archive places (RFC 5005) and an index for tombstones (RFC 6721)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_KEY = sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table('hub_pings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('hub', sa.String(length=2048), nullable=False),
    sa.Column('feed_url', sa.String(length=2048), nullable=False),
    sa.Column('pending_key', sa.String(length=64), nullable=True),
    sa.Column('article_ids', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pending_key')
    )
    op.create_index('ix_hub_pings_due', 'hub_pings', ['state', 'next_attempt_at'], unique=False)
    op.create_index('ix_hub_pings_hub', 'hub_pings', ['hub', 'state'], unique=False)
    op.create_table('archive_items',
    sa.Column('feed_key', _KEY, nullable=False),
    sa.Column('article_id', _KEY, nullable=False),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('pending', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('feed_key', 'article_id'),
    sa.UniqueConstraint('feed_key', 'position', name='uq_archive_position')
    )
    op.create_index('ix_archive_items_pending', 'archive_items', ['feed_key', 'pending'], unique=False)
    op.create_index('ix_articles_status_modified', 'articles', ['status', 'modified_at'], unique=False)
    # Every article already in a feed is filed by the next render of that feed, oldest first.
    op.execute("INSERT INTO archive_items (feed_key, article_id, position, pending) "
               "SELECT feed_key, article_id, NULL, 'migrated' FROM feed_items")


def downgrade() -> None:
    op.drop_index('ix_articles_status_modified', table_name='articles')
    op.drop_index('ix_archive_items_pending', table_name='archive_items')
    op.drop_table('archive_items')
    op.drop_index('ix_hub_pings_hub', table_name='hub_pings')
    op.drop_index('ix_hub_pings_due', table_name='hub_pings')
    op.drop_table('hub_pings')
