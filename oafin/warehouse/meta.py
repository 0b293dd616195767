"""The warehouse's one SQLAlchemy ``MetaData``: every table module registers its tables on it, and
``oafin.warehouse.schema`` imports them all, so code that needs the whole schema imports ``schema``."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
