"""Alembic environment: migrations run on the Engine Quorum hands over."""

from alembic import context
from sqlmodel import SQLModel

from engine.store import models  # noqa: F401
from engine.store.db import make_engine
from engine.store.search import is_search_object

target_metadata = SQLModel.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            # the search indexes are made by engine/store/search.py, not the models
            include_name=lambda name, type_, parent: not is_search_object(name),
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
