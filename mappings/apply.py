"""Applying a mapping: one ``RawRecord`` in, one ``MappedRecord`` (standard columns) out.

Pure and total on data: a value the code tables or value maps do not know becomes an
``UNMAPPED_CODE`` issue (DESIGN.md: "An unmapped value is not guessed"), a value that cannot be
parsed a ``CONTRACT_VIOLATION`` issue; either way the field is ``None`` and the rest of the record
is still mapped. A missing optional value is ``None`` without an issue: whether a field is
required is the data contracts' business. Only caller mistakes raise (a record of a kind or system
the mapping does not cover, a missing ``from_context`` key).

Child issues (an invoice's bad amount) are on the parent record, their field named
``claim_invoice[<row>].<column>``, so a consumer can tell them from the claim's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from mappings.code_tables import CODE_LOOKUPS, CodeTables
from mappings.parse import OBJECT_PARSERS, ParseError, normalize_text, parser, period_of
from mappings.spec import WILDCARD, ChildMapping, FieldSpec, SourceMapping
from oafin.connectors.http import parse_json
from oafin.records import Issue, IssueCode, MappedRecord, RawRecord
from oafin.standard import ENTITIES

_MAX_VALUE_CHARS: Final = 200
_INDEX: Final = re.compile(r"-?\d+")
JSON_SUFFIX: Final = ":json"  # a form_components path whose value is JSON text to decode
_SCALARS: Final = (str, int, float, Decimal, date)  # date covers datetime
# What a parser may raise on a value it cannot read: ParseError, an overflow moving year 1 to UTC,
# decimal.InvalidOperation (an ArithmeticError).
_UNREADABLE: Final = (ValueError, OverflowError, ArithmeticError)


class _Problem(Exception):
    """Internal: why one field could not be mapped (becomes an ``Issue``)."""

    def __init__(self, code: IssueCode, value: object, message: str) -> None:
        self.code, self.value, self.message = code, value, message


def _shown(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


_LABELS: dict[object, str] = {}  # form labels repeat on every record; normalise each once


def _label(text: object) -> str:
    if not isinstance(text, str):
        return normalize_text(text)
    label = _LABELS.get(text)
    if label is None:
        label = normalize_text(text)
        if len(_LABELS) < 10_000:
            _LABELS[text] = label
    return label


def _reason(value: object, exc: Exception) -> str:
    return str(exc) if isinstance(exc, ParseError) else f"{value!r} cannot be read: {exc}"


def _getter(path: str) -> Callable[[Any], Any]:
    """Read ``a.b`` from nested dicts (and list indexes). A key that itself contains dots wins:
    Kingdee rows are keyed ``FProposerID.FStaffNumber`` (source-systems.md §7.3)."""
    parts = path.split(".")
    if len(parts) == 1:
        return lambda obj: obj.get(path) if isinstance(obj, dict) else None

    def get(obj: Any) -> Any:
        if isinstance(obj, dict) and path in obj:
            return obj[path]
        for part in parts:
            if isinstance(obj, dict):
                obj = obj.get(part)
            elif isinstance(obj, list) and _INDEX.fullmatch(part) and -len(obj) <= int(part) < len(obj):
                obj = obj[int(part)]  # -1: the last item (WeCom's last approval node)
            else:
                return None
        return obj

    return get


def _conditions(spec: dict[str, tuple[str, ...]] | None) -> list[tuple[Callable[[Any], Any], frozenset[str]]]:
    return [
        (_getter(k), frozenset(normalize_text(v) for v in allowed)) for k, allowed in (spec or {}).items()
    ]


def _holds(conditions: list[tuple[Callable[[Any], Any], frozenset[str]]], obj: Any) -> bool:
    for get, allowed in conditions:
        value = get(obj)
        if (normalize_text(value) if value is not None else "") not in allowed:
            return False
    return True


class _Record:
    """What one field evaluation can see: the source record, the mapped values so far, the tables."""

    __slots__ = (
        "root",
        "kind",
        "source_id",
        "system",
        "context",
        "tables",
        "values",
        "cells",
        "parent",
        "identity_system",
    )

    def __init__(
        self,
        root: Any,
        kind: str,
        source_id: str,
        system: str,
        context: Mapping[str, Any],
        tables: CodeTables,
        values: dict[str, Any],
        cells: dict[str, Any] | None,
        parent: dict[str, Any] | None = None,
        identity_system: str | None = None,
    ) -> None:
        self.root = root  # the record (inside `unwrap`), or the table row of a child
        self.kind = kind
        self.source_id = source_id
        self.system = system
        self.context = context
        self.tables = tables
        self.values = values  # standard columns mapped so far
        self.cells = cells  # form fields (or a row's cells) by label, built on first use
        self.parent = parent  # the parent record's values, for a child
        # whose ids ``via: identity`` looks up: the mapping's ``identity_system``, else its system
        self.identity_system = identity_system or system


class _Field:
    """One compiled field spec."""

    def __init__(self, name: str, kind: str, spec: FieldSpec, components: tuple[str, str, str]) -> None:
        self.name, self.spec, self.is_list = name, spec, kind == "list"
        self.is_multi, self.split, self.is_period = spec.is_multi, spec.split, spec.period_of is not None
        self.when = [(k, frozenset(v)) for k, v in (spec.when or {}).items()]
        # `where` tests the record, or with `items` each item
        self.where = _conditions(spec.where) if spec.items is None else []
        self.item_where = _conditions(spec.where) if spec.items is not None else []
        self.items = _getter(spec.items) if spec.items is not None else None
        self.item_get = _getter(spec.path) if spec.items is not None else None  # type: ignore[arg-type]
        self.parsers = [parser(k, spec.format, spec.tz) for k in spec.parse_kinds]
        self.parse = self.parsers[0]
        self.takes_object = spec.parse_kinds[0] in OBJECT_PARSERS  # e.g. Hesine's money object
        self.translate = self._translator(spec)
        self.read = self._reader(spec, components)

    # -- where the value comes from ------------------------------------------------------------
    def _reader(self, spec: FieldSpec, components: tuple[str, str, str]) -> Callable[[_Record], Any]:
        if isinstance(spec.path, tuple):
            getters = [_getter(p) for p in spec.path]
            return lambda rec: tuple(g(rec.root) for g in getters)
        if spec.path is not None:
            get = _getter(spec.path)
            return lambda rec: get(rec.root)
        if spec.form is not None or spec.label is not None:
            label = normalize_text(spec.form if spec.form is not None else spec.label)
            if spec.value_path is not None:
                inner = _getter(spec.value_path)
                return lambda rec: inner(_cells(rec, components).get(label))
            return lambda rec: _cells(rec, components).get(label)
        if spec.constant is not None:
            constant = spec.constant
            return lambda rec: constant
        if spec.from_context is not None:
            key = spec.from_context
            return lambda rec: rec.context.get(key)
        if spec.template is not None:
            template = spec.template
            return lambda rec: template.format(system=rec.system, kind=rec.kind, source_id=rec.source_id)
        if spec.parent is not None:
            column = spec.parent
            return lambda rec: (rec.parent or {}).get(column)
        assert spec.period_of is not None
        sources = spec.period_of
        return lambda rec: next((rec.values[s] for s in sources if rec.values.get(s) is not None), None)

    # -- how it translates ---------------------------------------------------------------------
    def _translator(self, spec: FieldSpec) -> Callable[[_Record, Any], Any] | None:
        if spec.codes is not None:
            table, (column, _) = spec.codes, CODE_LOOKUPS[spec.codes]

            def code(rec: _Record, value: Any) -> Any:
                found = rec.tables.lookup(table).get(value)
                if found is None:
                    raise _Problem(
                        "UNMAPPED_CODE", value, f"{value!r} is not a {column} in the {table} table"
                    )
                return found

            return code
        if spec.via == "person_id":

            def known_person(rec: _Record, value: Any) -> Any:
                if value not in rec.tables.person_ids():
                    raise _Problem(
                        "UNMAPPED_CODE", value, f"{value!r} is not a person_id in the people table"
                    )
                return value

            return known_person
        if spec.via is not None:  # identity: the person with this id in the mapping's identity system

            def person(rec: _Record, value: Any) -> Any:
                found = rec.tables.identity_lookup(rec.identity_system).get(value)
                if found is None:
                    raise _Problem(
                        "UNMAPPED_CODE",
                        value,
                        f"no person has the {rec.identity_system} id {value!r} in identities",
                    )
                return found

            return person
        if spec.values is not None:
            values = spec.values
            where = spec.path if spec.path is not None else (spec.form or spec.label)
            if isinstance(spec.path, tuple):
                paths = list(spec.path)
                rules = list(values.items())

                def match(rec: _Record, key: Any) -> Any:
                    for pattern, target in rules:
                        if all(p in (WILDCARD, k) for p, k in zip(pattern, key, strict=True)):
                            return target
                    shown = "+".join(key)
                    raise _Problem(
                        "UNMAPPED_CODE", shown, f"{list(key)!r} of {paths} is not in the value map"
                    )

                return match

            def lookup(rec: _Record, value: Any) -> Any:
                key = value if isinstance(value, str) else str(value)
                if key in values:
                    return values[key]
                if WILDCARD in values:
                    return values[WILDCARD]
                raise _Problem("UNMAPPED_CODE", key, f"{key!r} of {where} is not in the value map")

            return lookup
        return None

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, rec: _Record) -> Any:
        """The standard value; raises ``_Problem``."""
        for column, allowed in self.when:
            if rec.values.get(column) not in allowed:
                return "" if self.is_list else None
        if self.where and not _holds(self.where, rec.root):
            return "" if self.is_list else None
        if self.is_period:
            moment = self.read(rec)
            return None if moment is None else period_of(moment)
        if self.items is not None:
            return self._items(rec)
        raw = self.read(rec)
        if self.is_multi:
            return self._multi(rec, raw)
        if self.split is not None:
            if raw is None:
                return ""
            parts = normalize_text(raw).split(self.split)
            return self._join(rec, parts)
        return self._one(rec, raw)

    def _one(self, rec: _Record, raw: Any) -> Any:
        if raw is None:
            return None
        if not isinstance(raw, _SCALARS) and not (self.takes_object and isinstance(raw, dict)):
            raise _Problem("CONTRACT_VIOLATION", raw, f"expected one value, got {type(raw).__name__}")
        if isinstance(raw, str) and not raw.strip():
            return None
        try:
            value = self.parse(raw)
        except _UNREADABLE as exc:
            raise _Problem("CONTRACT_VIOLATION", raw, _reason(raw, exc)) from None
        if value == "":
            return None
        return value if self.translate is None else self.translate(rec, value)

    def _join(self, rec: _Record, parts: Iterable[Any]) -> str:
        out = []
        for part in parts:
            value = self._one(rec, part)
            if value is not None:
                out.append(str(value))
        return ",".join(out)

    def _items(self, rec: _Record) -> str | int | None:
        items = self.items(rec.root)  # type: ignore[misc]
        if items is None:
            return None if self.spec.total else ""
        if not isinstance(items, list):
            raise _Problem("CONTRACT_VIOLATION", items, f"{self.spec.items} is not a list")
        get = self.item_get
        chosen = [get(item) for item in items if not self.item_where or _holds(self.item_where, item)]  # type: ignore[misc]
        if self.spec.total:  # the sum of the items' amounts; a missing one counts as 0
            return sum(v for v in (self._one(rec, part) for part in chosen) if v is not None)
        return self._join(rec, chosen)

    def _multi(self, rec: _Record, raw: tuple[Any, ...]) -> Any:
        key = []
        for value, parse in zip(raw, self.parsers, strict=True):
            if value is None or (isinstance(value, str) and not value.strip()):
                key.append("")
                continue
            if not isinstance(value, _SCALARS):
                raise _Problem("CONTRACT_VIOLATION", value, f"expected one value, got {type(value).__name__}")
            try:
                key.append(normalize_text(parse(value)))
            except _UNREADABLE as exc:
                raise _Problem("CONTRACT_VIOLATION", value, _reason(value, exc)) from None
        if not any(key):
            return None
        return self.translate(rec, tuple(key))  # type: ignore[misc]


def _decoded(value: Any) -> Any:
    """JSON text decoded with non-integer numbers as ``Decimal`` (never float), at most
    ``MAX_JSON_DEPTH`` deep; raises ``ValueError`` for text that is not JSON."""
    return parse_json(value) if isinstance(value, str) else value


def _cells(rec: _Record, components: tuple[str, str, str]) -> dict[str, Any]:
    """The record's form fields by normalised label, built once per record (first label wins).

    A path ending in ``:json`` holds JSON text (``form_components.json``); text that is not JSON
    gives no fields, and the record's own fields then say what is missing.
    """
    if rec.cells is None:
        path, label_key, value_key = components
        if path.endswith(JSON_SUFFIX):
            try:
                listed = _decoded(_getter(path[: -len(JSON_SUFFIX)])(rec.root))
            except ValueError:
                listed = None
        else:
            listed = _getter(path)(rec.root)
        rec.cells = _labelled(listed, label_key, value_key)
    return rec.cells


def _labelled(listed: Any, label_key: str, value_key: str) -> dict[str, Any]:
    """Items ``{<label_key>: label, <value_key>: value}`` by normalised label (first label wins);
    the keys are paths (WeCom's label is ``title.0.text``)."""
    get_label, get_value = _getter(label_key), _getter(value_key)
    cells: dict[str, Any] = {}
    for item in listed if isinstance(listed, list) else ():
        label = get_label(item) if isinstance(item, dict) else None
        if label is not None:
            cells.setdefault(_label(label), get_value(item))
    return cells


def _blank(entity: str) -> dict[str, Any]:
    """An entity's columns before mapping: ``None``, and ``""`` for a list (the standard's "none")."""
    return {name: "" if kind == "list" else None for name, kind in ENTITIES[entity].items()}


@dataclass(frozen=True)
class _Child:
    entity: str
    spec: ChildMapping
    fields: list[_Field]
    blank: dict[str, Any]


@dataclass(frozen=True)
class _Plan:
    entity: str
    blank: dict[str, Any]
    fields: list[_Field]
    children: list[_Child]
    id_field: str | None
    components: tuple[str, str, str]


def _plan(mapping: SourceMapping, kind: str) -> _Plan:
    cache = mapping._plans
    if kind in cache:
        return cache[kind]
    fc = mapping.form_components
    components = (fc.path + (JSON_SUFFIX if fc.json_text else ""), fc.label_key, fc.value_key)
    specs = mapping.fields_for(kind)
    columns = ENTITIES[mapping.entity]
    fields = [_Field(n, columns[n], specs[n], components) for n in mapping.order(kind)]
    children = []
    for child, spec in mapping.form(kind).children.items():
        child_columns = ENTITIES[child]
        row = (spec.rows_key or "", spec.label_key, spec.value_key)
        child_fields = [_Field(n, child_columns[n], spec.fields[n], row) for n in mapping.order(kind, child)]
        children.append(_Child(child, spec, child_fields, _blank(child)))
    plan = _Plan(
        mapping.entity, _blank(mapping.entity), fields, children, mapping.form(kind).id_field, components
    )
    cache[kind] = plan
    return plan


def _evaluate(fields: list[_Field], rec: _Record, issues: list[Issue], prefix: str = "") -> None:
    for f in fields:
        try:
            rec.values[f.name] = f.evaluate(rec)
        except _Problem as problem:
            rec.values[f.name] = None
            issues.append(Issue(problem.code, prefix + f.name, _shown(problem.value), problem.message))


def _children(
    child: _Child, rec: _Record, components: tuple[str, str, str], issues: list[Issue]
) -> list[dict[str, Any]]:
    """The child rows of a TableField: JSON ``[{"rowValue": [{"label", "value"}]}]`` (§1.3), or of
    a detail table found by ``path`` (+ ``where``, ``rows_path``; Weaver §4.2)."""
    spec = child.spec
    if spec.form is not None:
        raw = _cells(rec, components).get(normalize_text(spec.form))
        if spec.rows_path is not None and isinstance(raw, dict):
            raw = _getter(spec.rows_path)(raw)
    else:
        raw = _path_rows(spec, rec.root)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return []
    try:
        rows = _decoded(raw)
    except ValueError as exc:
        issues.append(
            Issue("CONTRACT_VIOLATION", child.entity, _shown(raw), f"{spec.source} is not JSON: {exc}")
        )
        return []
    if not isinstance(rows, list):
        issues.append(
            Issue("CONTRACT_VIOLATION", child.entity, _shown(raw), f"{spec.source} is not a list of rows")
        )
        return []
    out = []
    for i, row in enumerate(rows):
        where = f"{child.entity}[{i}]"
        if spec.rows_key is None:  # the row is the list of cells (Feishu fieldList, §3.3)
            cells_list = row if isinstance(row, list) else None
        else:
            cells_list = row.get(spec.rows_key) if isinstance(row, dict) else None
        if not isinstance(cells_list, list):
            what = (
                f"the row has no {spec.rows_key} list" if spec.rows_key else "the row is not a list of cells"
            )
            issues.append(Issue("CONTRACT_VIOLATION", where, _shown(row), what))
            continue
        cells = _labelled(cells_list, spec.label_key, spec.value_key)
        values = dict(child.blank)
        row_rec = _Record(
            row,
            rec.kind,
            rec.source_id,
            rec.system,
            rec.context,
            rec.tables,
            values,
            cells,
            rec.values,
            rec.identity_system,
        )
        _evaluate(child.fields, row_rec, issues, prefix=where + ".")
        out.append(values)
    return out


def _path_rows(spec: ChildMapping, root: Any) -> Any:
    """The rows a ``path`` child reads: the list at ``path``, its items kept by ``where``, and the
    rows at ``rows_path`` inside each (None when the record has no such list)."""
    listed = _getter(str(spec.path))(root)
    if not isinstance(listed, list) or (spec.where is None and spec.rows_path is None):
        return listed
    wanted = [(_getter(k), normalize_text(v)) for k, v in (spec.where or {}).items()]
    rows: list[Any] = []
    for item in listed:
        if any(get(item) is None or normalize_text(get(item)) != value for get, value in wanted):
            continue
        inner = _getter(spec.rows_path)(item) if spec.rows_path else item
        if isinstance(inner, list):
            rows.extend(inner)
        elif spec.rows_path is None:
            rows.append(inner)
    return rows


def _check_context(mapping: SourceMapping, context: Mapping[str, Any]) -> None:
    missing = [key for key in mapping.context_keys() if context.get(key) in (None, "")]
    if missing:
        raise ValueError(
            f"the {mapping.system} mapping reads {', '.join(missing)} from the source's config "
            "(from_context); pass it in context"
        )


def _map(
    mapping: SourceMapping, raw: RawRecord, tables: CodeTables, context: Mapping[str, Any]
) -> MappedRecord:
    if raw.system != mapping.system:
        raise ValueError(f"a {raw.system} record cannot be mapped with the {mapping.system} mapping")
    plan = _plan(mapping, raw.kind)
    payload = raw.payload
    root = payload
    if mapping.unwrap is not None and isinstance(payload.get(mapping.unwrap), dict):
        root = payload[mapping.unwrap]
    source_id = raw.source_id
    if not source_id and plan.id_field is not None and root.get(plan.id_field) is not None:
        source_id = normalize_text(root[plan.id_field])
    values = dict(plan.blank)
    issues: list[Issue] = []
    rec = _Record(
        root,
        raw.kind,
        source_id,
        mapping.system,
        context,
        tables,
        values,
        None,
        None,
        mapping.identity_system,
    )
    path = plan.components[0]
    if path.endswith(JSON_SUFFIX):  # say why the form's fields are all missing, if they are
        text = _getter(path[: -len(JSON_SUFFIX)])(root)
        try:
            decoded = _decoded(text)
        except ValueError as exc:
            decoded, reason = None, f"{path[: -len(JSON_SUFFIX)]} is not JSON: {exc}"
        else:
            reason = f"{path[: -len(JSON_SUFFIX)]} is not a list of form fields"
        if text is not None and not isinstance(decoded, list):
            issues.append(Issue("CONTRACT_VIOLATION", path[: -len(JSON_SUFFIX)], _shown(text), reason))
    _evaluate(plan.fields, rec, issues)
    children = {child.entity: _children(child, rec, plan.components, issues) for child in plan.children}
    return MappedRecord(
        entity=plan.entity,
        system=raw.system,
        kind=raw.kind,
        source_id=source_id,
        values=values,
        raw=payload,
        issues=issues,
        children=children,
    )


def map_record(
    mapping: SourceMapping, raw: RawRecord, tables: CodeTables, context: Mapping[str, Any] | None = None
) -> MappedRecord:
    """Map one source record onto the mapping's standard entity.

    ``context`` holds the source's config values the mapping reads with ``from_context``
    (DingTalk: ``company_code``). Bad data never raises: it becomes issues on the record.
    """
    context = context or {}
    _check_context(mapping, context)
    return _map(mapping, raw, tables, context)


def map_records(
    mapping: SourceMapping,
    raws: Iterable[RawRecord],
    tables: CodeTables,
    context: Mapping[str, Any] | None = None,
) -> list[MappedRecord]:
    """``map_record`` for many records, in order."""
    context = context or {}
    _check_context(mapping, context)
    return [_map(mapping, raw, tables, context) for raw in raws]
