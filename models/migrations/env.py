"""Alembic environment: the URL comes from the caller (``itabot db upgrade``), never a file."""

from alembic import context
from sqlalchemy import text

from models import Base
from models.db import make_engine

config = context.config
target_metadata = Base.metadata
#: Key of the PostgreSQL advisory lock held while migrating ("itabot" in ASCII).
MIGRATION_LOCK = 0x697461626F74


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several processes starting at once (web processes, workers, a release phase): one
                # migrates, the others wait here, then read the new version and find nothing to do.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
