"""Mappings: one YAML file per source system, the code tables, and the mapper.

mapping = load_mapping(default_mapping_path("dingtalk"))
tables = load_code_tables()
records = map_records(mapping, raws, tables, {"company_code": "C01"})
"""

from __future__ import annotations

from mappings.apply import map_record, map_records
from mappings.code_tables import DEFAULT_TABLES_DIR, CodeTableError, CodeTables, load_code_tables
from mappings.loader import DEFAULT_MAPPINGS_DIR, MappingError, default_mapping_path, load_mapping
from mappings.parse import ParseError, normalize_text
from mappings.spec import SourceMapping

__all__ = [
    "DEFAULT_MAPPINGS_DIR",
    "DEFAULT_TABLES_DIR",
    "CodeTableError",
    "CodeTables",
    "MappingError",
    "ParseError",
    "SourceMapping",
    "default_mapping_path",
    "load_code_tables",
    "load_mapping",
    "map_record",
    "map_records",
    "normalize_text",
]
