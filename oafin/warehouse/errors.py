"""Warehouse errors the command line reports without importing the warehouse (it starts fast)."""

from __future__ import annotations


class WarehouseSchemaError(RuntimeError):
    """The warehouse's schema is not the one this code needs; the message says what to do."""
