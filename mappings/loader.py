"""Reading mapping files: YAML in, a validated ``SourceMapping`` out, or an error naming file, line and key.

The YAML is read strictly so that what a customer types is what the mapping compares:
plain scalars stay text (``06`` is not 6, ``NO`` is not false, ``2026-10-01`` is not a date);
only ``true``/``false`` and ``null``/``~`` are special. A list may be a mapping key
(``[COMPLETED, agree]: approved``), and a key given twice is an error, not a silent overwrite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from mappings.spec import SourceMapping, SpecError

DEFAULT_MAPPINGS_DIR: Final = Path(__file__).resolve().parent

_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_MERGE: Final = "tag:yaml.org,2002:merge"


class MappingError(ValueError):
    """A mapping file that cannot be used; the message starts with ``<file>:<line>: <key>:``."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's implicit ints, floats, dates and yes/no booleans."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.SequenceNode):
                key = tuple(self.construct_sequence(key_node, deep=True))
            else:
                key = self.construct_object(key_node, deep=deep)
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in (_NULL, _MERGE)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|false)\Z"), list("tf"))


def default_mapping_path(system: str) -> Path:
    """The mapping shipped for ``system`` (``dingtalk``, ``kingdee``)."""
    path = DEFAULT_MAPPINGS_DIR / f"{system}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in DEFAULT_MAPPINGS_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no default mapping for system {system!r}; shipped: {', '.join(known)}")
    return path


EXTENDS: Final = "extends"


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found") from None
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise MappingError(f"{path}: a mapping file is a YAML mapping with system, entity and forms")
    return data, root


def _merged(base: dict[str, Any], over: dict[str, Any], key: str = "") -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced; a field
    under ``fields`` is replaced whole (a field spec is one unit: its keys never mix with the base's)."""
    out = dict(base)
    for k, v in over.items():
        if key != "fields" and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merged(out[k], v, str(k))
        else:
            out[k] = v
    return out


def _resolved(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], yaml.Node | None]:
    """The file's data with its ``extends:`` base (a mapping file, relative to this one) merged under it.

    A mapping that differs from another only in some places (the same form read over another API
    of the same system) says ``extends: other.yaml`` and gives only what differs.
    """
    data, root = _read_yaml(path)
    base_name = data.pop(EXTENDS, None)
    if base_name is None:
        return data, root
    if not isinstance(base_name, str) or not base_name:
        raise MappingError(f"{path}: {EXTENDS}: give the base mapping's file name")
    base_path = (path.parent / base_name).resolve()
    if base_path in seen or base_path == path.resolve():
        raise MappingError(f"{path}: {EXTENDS}: {base_name} extends this file again (a cycle)")
    base, _ = _resolved(base_path, (*seen, path.resolve()))
    return _merged(base, data), root


def load_mapping(path: str | Path) -> SourceMapping:
    """Read and validate one mapping file. Raises ``MappingError`` naming the file, line and key."""
    path = Path(path)
    data, root = _resolved(path)
    try:
        return SourceMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError(_describe(path, root, exc)) from None


def _describe(path: Path, root: yaml.Node | None, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):
            loc += cause.loc
            message = str(cause)
        else:
            message = error["msg"].removeprefix("Value error, ")
        line = _line_of(root, loc)
        where = f"{path}:{line}" if line else str(path)
        key = ".".join(str(part) for part in loc)
        lines.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` that exists in the YAML."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next(
                (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None
            )
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
