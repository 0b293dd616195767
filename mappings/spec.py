"""The mapping language: pydantic models of one mapping file (one file per source system).

A mapping file says where each standard field comes from and how its values translate
(DESIGN.md, "Mappings"). A field spec has three parts, applied in this order:

1. where the value comes from, exactly one of
   ``path`` (a JSON path ``a.b``; a list of paths reads several values together for ``values``),
   ``form`` (a DingTalk form field by label), ``label`` (a cell of a TableField row, in
   ``children``), ``items`` + ``path`` (a list, ``path`` read on each item; with ``total: true``
   and ``parse: money`` their sum, e.g. a voucher's debit lines), ``constant``,
   ``from_context`` (a key of the source's config, e.g. ``company_code``), ``template``
   (``"{system}:{kind}:{source_id}"``), ``parent`` (a column of the parent record) and
   ``period_of`` (the Asia/Shanghai ``yyyy-MM`` of the first of these timestamp fields that is set);
   with ``form`` or ``label``, ``value_path`` reads a path inside the field's value where the value
   is an object (WeCom controls: ``new_money``, ``selector.options.0.value.0.text``);
2. when it applies: ``where`` (source values, e.g. ``{operation_result: AGREE}``; on each item
   with ``items``) and ``when`` (standard fields already mapped, e.g. ``{status: approved}``);
3. how it is read: ``split`` (text → list), ``parse`` (``mappings.parse`` kinds) with ``format`` and
   ``tz``, then at most one of ``codes`` (a code table), ``via`` (``identity``: the person whose
   id in the mapping's ``identity_system`` (default: its own ``system``) is the value, from identities.csv; ``person_id``: the value
   is a person_id of people.csv) and ``values`` (a value map; ``"*"`` matches anything; the first
   matching entry wins). A value no table knows is not guessed: the record gets ``UNMAPPED_CODE``.

A plain string is short for ``{path: ...}``. The models check everything that can be checked
without data, so a wrong mapping fails at load time with the file, line and key.
"""

from __future__ import annotations

import string
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from mappings.code_tables import CODE_LOOKUPS, VIA_LOOKUPS
from mappings.parse import PARSE_OUTPUT, ParseError, ParseKind, normalize_text, zone
from oafin.standard import BUSINESS_TZ, ENTITIES

WILDCARD: Final = "*"
SOURCES: Final = (
    "path",
    "form",
    "label",
    "items",
    "constant",
    "from_context",
    "template",
    "parent",
    "period_of",
)
TEMPLATE_NAMES: Final = frozenset({"system", "kind", "source_id"})
CHILD_SOURCES: Final = frozenset({"label", "parent", "constant", "from_context", "template", "period_of"})


class SpecError(ValueError):
    """A mapping that cannot work; ``loc`` is the key path below the model that raised it."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc


def _tuple(value: Any) -> Any:
    """``a`` → ``("a",)``; ``[a, b]`` → ``("a", "b")``: one spelling for one-or-many."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(value)
    return value


def _path(value: Any) -> Any:
    """A one-element list of paths is the path itself; several stay a tuple."""
    if isinstance(value, list):
        return value[0] if len(value) == 1 else tuple(value)
    return value


def _conditions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tuple(v) for k, v in value.items()}
    return value


Texts = tuple[str, ...]
Conditions = Annotated[dict[str, Texts] | None, BeforeValidator(_conditions)]


class FieldSpec(BaseModel):
    """Where one standard field comes from and how its value is read (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str | Texts | None, BeforeValidator(_path)] = None
    form: str | None = None
    label: str | None = None
    items: str | None = None
    constant: str | None = None
    from_context: str | None = None
    template: str | None = None
    parent: str | None = None
    period_of: Annotated[Texts | None, BeforeValidator(_tuple)] = None
    value_path: str | None = None  # with form/label: a path inside the field's value

    where: Conditions = None
    when: Conditions = None

    split: str | None = None
    parse: Annotated[tuple[ParseKind, ...], BeforeValidator(_tuple)] = ("text",)
    format: str | None = None
    tz: str = BUSINESS_TZ

    codes: str | None = None
    via: str | None = None
    values: dict[str | Texts, str | None] | None = None
    # with items: the sum of the items' amounts (a voucher's debit total), not their list
    total: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        given = [name for name in SOURCES if getattr(self, name) is not None]
        if self.items is not None:
            if self.path is None:
                raise ValueError("items needs a path to read on each item")
            given.remove("path")
        if len(given) != 1:
            raise ValueError(
                f"give exactly one source of {', '.join(SOURCES)}; got {', '.join(given) or 'none'}"
            )
        if self.value_path is not None and self.form is None and self.label is None:
            raise ValueError("value_path reads inside a form field's value: use it with form: or label:")
        translations = [name for name in ("codes", "via", "values") if getattr(self, name) is not None]
        if len(translations) > 1:
            raise ValueError(f"use at most one of codes, via, values; got {', '.join(translations)}")
        if self.codes is not None and self.codes not in CODE_LOOKUPS:
            raise ValueError(f"codes: unknown code table {self.codes!r}; known: {', '.join(CODE_LOOKUPS)}")
        if self.via is not None and self.via not in VIA_LOOKUPS:
            hint = (
                " (people are identities now: write via: identity)" if self.via.startswith("people.") else ""
            )
            raise ValueError(f"via: {self.via!r} should be one of {', '.join(VIA_LOOKUPS)}{hint}")
        try:
            zone(self.tz)
        except ParseError as exc:
            raise ValueError(f"tz: {exc}") from None
        if self.format is not None and not set(self.parse) & {"datetime", "date"}:
            raise ValueError("format only applies to parse: datetime or date")
        if self.template is not None:
            names = {name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None}
            if not names <= TEMPLATE_NAMES:
                raise ValueError(
                    f"template: unknown name(s) {', '.join(sorted(names - TEMPLATE_NAMES))}; "
                    f"use {', '.join(sorted(TEMPLATE_NAMES))}"
                )
        if self.total and (self.items is None or self.parse != ("money",)):
            raise ValueError("total sums the items' amounts: it needs items and parse: money")
        if self.split is not None and (self.items is not None or self.is_multi):
            raise ValueError(
                "split reads one text value; it cannot be combined with items or a list of paths"
            )
        self._check_multi()
        if self.values is not None:
            self.values = self._normalized_values(self.values)
        return self

    @property
    def is_multi(self) -> bool:
        """Several paths read together, matched as one key against ``values``."""
        return isinstance(self.path, tuple)

    def _check_multi(self) -> None:
        width = len(self.path) if isinstance(self.path, tuple) else 1
        if self.is_multi and self.values is None:
            raise ValueError("a list of paths needs a values map whose keys are lists of the same length")
        if len(self.parse) not in (1, width):
            raise ValueError(f"parse: give one kind, or one per path ({width})")
        if not self.is_multi:
            return
        for key in self.values or {}:
            if not isinstance(key, tuple) or len(key) != width:
                raise SpecError(
                    f"values: key {list(key) if isinstance(key, tuple) else key!r} should be a list of {width} values, one per path"
                )

    def _normalized_values(self, values: dict[Any, str | None]) -> dict[Any, str | None]:
        out: dict[Any, str | None] = {}
        for key, target in values.items():
            if isinstance(key, tuple):
                if not self.is_multi:
                    raise SpecError(f"values: key {list(key)!r} is a list but {self.path!r} is one path")
                key = tuple(normalize_text(k) for k in key)
            else:
                key = normalize_text(key)
            if key in out:
                raise SpecError(f"values: key {key!r} is given twice (after normalising the text)")
            out[key] = None if target is None else normalize_text(target)
        return out

    @property
    def parse_kinds(self) -> tuple[str, ...]:
        width = len(self.path) if isinstance(self.path, tuple) else 1
        return self.parse * width if len(self.parse) == 1 else self.parse

    def depends_on(self) -> tuple[str, ...]:
        """Standard fields of the same record this one needs first (``when``, ``period_of``)."""
        return tuple(self.when or ()) + tuple(self.period_of or ())

    def source_keys(self) -> list[str]:
        """The source field keys this spec reads from the record (not from items or form labels)."""
        keys: list[str] = []
        if self.items is not None:
            keys.append(self.items)
        elif isinstance(self.path, tuple):
            keys.extend(self.path)
        elif self.path is not None:
            keys.append(self.path)
        if self.items is None:
            keys.extend(self.where or ())
        return keys

    def output_kind(self) -> str | None:
        """The standard column kind this spec yields; ``None`` for ``parent`` (the parent's kind)."""
        if self.parent is not None:
            return None
        if self.period_of is not None:
            return "text"
        if self.values is not None or self.codes is not None or self.via is not None or self.is_multi:
            element = "text"
        else:
            element = PARSE_OUTPUT[self.parse[0]]
        if self.total:
            return "fen"
        if self.items is not None or self.split is not None:
            return "list" if element == "text" else f"list of {element}"
        return element


class ChildMapping(BaseModel):
    """Child records read from a DingTalk TableField (default-forms.md, ``发票明细``), or from a
    detail table elsewhere in the record (Weaver's ``workflowDetailTableInfos``).

    ``form``: the TableField's label; its value is JSON, a list of rows
    ``{"rowValue": [{"label": ..., "value": ...}]}`` (source-systems.md §1.3); child fields read
    cells with ``label:``. Where the rows sit inside the field's value object, ``rows_path`` says
    where (WeCom Table controls: ``children``, each row ``{"list": [<controls>]}``, §2.3);
    ``label_key`` and ``value_key`` are paths (``title.0.text``); ``rows_key: null``: each row is
    itself the list of cells (a Feishu ``fieldList``'s 2-D list of widgets, §3.3). Or ``path``: a
    list in the record; ``where`` keeps its items whose keys hold these values (a table by
    ``tableDBName``) and ``rows_path`` reads the rows inside each kept item (§4.2:
    ``workflowDetailTableInfos[].workflowRequestTableRecords[]``).
    """

    model_config = ConfigDict(extra="forbid")

    form: str | None = None
    path: str | None = None
    where: dict[str, str] | None = None
    rows_path: str | None = None  # form: inside the field's value; path: inside each kept item
    rows_key: str | None = "rowValue"
    label_key: str = "label"
    value_key: str = "value"
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _one_source(self) -> ChildMapping:
        if (self.form is None) == (self.path is None):
            raise ValueError("give exactly one of form (a TableField label) or path (a list in the record)")
        if self.path is None and self.where is not None:
            raise ValueError("where only applies with path")
        return self

    @property
    def source(self) -> str:
        """How the rows are named in messages."""
        return self.form if self.form is not None else str(self.path)


class FormComponents(BaseModel):
    """Where the form fields are: DingTalk ``form_component_values[].name/value`` (§1.3); WeCom
    ``apply_data.contents[].title.0.text/value`` (§2.3). ``label_key`` and ``value_key`` are paths.

    ``json: true``: the value at ``path`` is JSON text to decode first (Feishu's ``form``, a JSON
    string of widgets, source-systems.md §3.3); numbers are decoded as ``Decimal``, never float.
    """

    model_config = ConfigDict(extra="forbid")

    path: str = "form_component_values"
    label_key: str = "name"
    value_key: str = "value"
    json_text: bool = Field(False, alias="json")


class FormMapping(BaseModel):
    """One kind of source record: a DingTalk process code or a Kingdee FormId."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    id_field: str | None = None  # Kingdee: the key holding the bill's id (FID)
    date_field: str | None = None  # Kingdee: the key the extraction window filters on
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    children: dict[str, ChildMapping] = Field(default_factory=dict)


class SourceMapping(BaseModel):
    """One source system's mapping onto one standard entity."""

    model_config = ConfigDict(extra="forbid")

    system: str
    entity: str
    # whose ids ``via: identity`` reads in identities.csv; None: ``system``'s own. Two systems that
    # are one company's same accounts (DingTalk's topapi and v1.0 APIs) share one set of ids.
    identity_system: str | None = None
    unwrap: str | None = None  # a payload with this key holds the record under it (the API envelope)
    form_components: FormComponents = Field(default_factory=FormComponents)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)  # shared by every form
    forms: dict[str, FormMapping] = Field(min_length=1)

    _orders: dict[str, list[str]] = PrivateAttr(default_factory=dict)
    _plans: dict[str, Any] = PrivateAttr(default_factory=dict)  # compiled by mappings.apply, per kind

    @model_validator(mode="after")
    def _check(self) -> SourceMapping:
        if self.entity not in ENTITIES:
            raise SpecError(f"unknown entity {self.entity!r}; known: {', '.join(ENTITIES)}", ("entity",))
        for kind, form in self.forms.items():
            loc: tuple[str | int, ...] = ("forms", kind)
            merged = self.fields_for(kind)
            where = {name: (("fields",) if name not in form.fields else (*loc, "fields")) for name in merged}
            _check_fields(self.entity, merged, where, children=False)
            self._orders[kind] = _order(merged, where)
            for child, spec in form.children.items():
                child_loc = (*loc, "children", child)
                if child not in ENTITIES:
                    raise SpecError(f"unknown entity {child!r}; known: {', '.join(ENTITIES)}", child_loc)
                child_where = dict.fromkeys(spec.fields, (*child_loc, "fields"))
                _check_fields(child, spec.fields, child_where, children=True, parent=self.entity)
                self._orders[f"{kind}/{child}"] = _order(spec.fields, child_where)
        return self

    @property
    def kinds(self) -> list[str]:
        return list(self.forms)

    def form(self, kind: str) -> FormMapping:
        try:
            return self.forms[kind]
        except KeyError:
            raise KeyError(
                f"{self.system} mapping has no form {kind!r}; it maps {', '.join(self.forms)}"
            ) from None

    def fields_for(self, kind: str) -> dict[str, FieldSpec]:
        """The shared fields with the form's own on top (a form's field of the same name wins)."""
        return {**self.fields, **self.form(kind).fields}

    def order(self, kind: str, child: str | None = None) -> list[str]:
        """Field names in evaluation order: every field after the fields its ``when``/``period_of`` use."""
        return self._orders[kind if child is None else f"{kind}/{child}"]

    def field_keys(self, form_id: str) -> list[str]:
        """Every source field key the form's mapping reads, the id field first, each once.

        Kingdee ExecuteBillQuery returns rows as arrays in FieldKeys order (source-systems.md
        §7.3), so the connector asks for exactly these and zips the answer back onto them.
        """
        form = self.form(form_id)
        keys = [form.id_field] if form.id_field else []
        for spec in self.fields_for(form_id).values():
            keys.extend(spec.source_keys())
        if form.date_field:
            keys.append(form.date_field)
        return list(dict.fromkeys(keys))

    def context_keys(self) -> list[str]:
        """The ``from_context`` keys every caller must supply (e.g. ``company_code``)."""
        specs = [s for kind in self.forms for s in self.fields_for(kind).values()]
        specs += [
            s for form in self.forms.values() for c in form.children.values() for s in c.fields.values()
        ]
        return list(dict.fromkeys(s.from_context for s in specs if s.from_context is not None))


def _check_fields(
    entity: str,
    fields: dict[str, FieldSpec],
    where: dict[str, tuple[str | int, ...]],
    *,
    children: bool,
    parent: str | None = None,
) -> None:
    columns = ENTITIES[entity]
    for name, spec in fields.items():
        loc = (*where[name], name)
        if name not in columns:
            raise SpecError(f"{name!r} is not a column of {entity}; columns: {', '.join(columns)}", loc)
        source = next(s for s in SOURCES if getattr(spec, s) is not None and not (s == "path" and spec.items))
        if children and source not in CHILD_SOURCES:
            raise SpecError(f"in children, read a cell with label: (not {source}:)", loc)
        if not children and source in {"label", "parent"}:
            raise SpecError(f"{source}: only applies to children", loc)
        for dep in spec.when or ():
            if dep not in fields:
                raise SpecError(f"when: {dep!r} is not mapped for this form, so it cannot be tested", loc)
        for dep in spec.period_of or ():
            if columns.get(dep) != "ts":
                raise SpecError(f"period_of: {dep!r} is not a timestamp column of {entity}", loc)
        if spec.period_of and not set(spec.period_of) & set(fields):
            raise SpecError(f"period_of: none of {', '.join(spec.period_of)} is mapped for this form", loc)
        want = columns[name]
        got: str | None
        if spec.parent is not None:
            assert parent is not None
            got = ENTITIES[parent].get(spec.parent)
            if got is None:
                raise SpecError(f"parent: {spec.parent!r} is not a column of {parent}", loc)
        else:
            got = spec.output_kind()
        if got != want:
            raise SpecError(f"{name} is a {want} column but this spec yields {got}{_hint(want)}", loc)


def _hint(kind: str) -> str:
    hints = {
        "fen": " (use parse: money)",
        "ts": " (use parse: datetime or epoch_ms)",
        "date": " (use parse: date)",
        "int": " (use parse: int or percent_bp)",
        "list": " (use items: or split:)",
    }
    return hints.get(kind, "")


def _order(fields: dict[str, FieldSpec], where: dict[str, tuple[str | int, ...]]) -> list[str]:
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise SpecError(f"{name!r} depends on itself through when/period_of", (*where[name], name))
        state[name] = "visiting"
        for dep in fields[name].depends_on():
            if dep in fields:
                visit(dep)
        state[name] = "done"
        order.append(name)

    for name in fields:
        visit(name)
    return order
