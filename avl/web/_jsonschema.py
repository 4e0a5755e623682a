"""attrs classes <-> JSON: a JSON Schema (2020-12, as OpenAPI 3.1 uses) generator, a
strict decoder for request bodies, and an encoder for responses. Pure.

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``None``,
``X | None`` / ``Optional[X]``, unions, ``list[X]``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``dict[str, X]`` / ``Mapping[str, X]``, ``Literal[...]``,
``enum.Enum`` subclasses, ``Any``/``object`` and nested attrs classes (as
``$ref`` to ``#/components/schemas/<Name>``).

Field metadata: ``description`` and ``example`` are copied into the schema;
``min_length``/``max_length`` (strings) and ``minimum``/``maximum`` (numbers) are
both documented and enforced by :func:`decode`.
"""

from __future__ import annotations

import collections.abc
import enum
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union

import attrs

from avl.errors import InvalidInputError

__all__ = ["SchemaBuilder", "decode", "encode_value", "schema_for"]

T = TypeVar("T")
JSONDict = dict[str, Any]

_NoneType = type(None)


def _is_union(tp: object) -> bool:
    origin = typing.get_origin(tp)
    return origin is Union or origin is types.UnionType


@functools.lru_cache(maxsize=256)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class SchemaBuilder:
    """Collects component schemas while converting types.

    Example:
        >>> @attrs.frozen(kw_only=True)
        ... class P:
        ...     x: int
        ...     tags: list[str] = attrs.field(factory=list)
        >>> b = SchemaBuilder()
        >>> b.schema(P)
        {'$ref': '#/components/schemas/P'}
        >>> b.components["P"]["required"]
        ['x']
    """

    def __init__(self) -> None:
        self.components: dict[str, JSONDict] = {}

    def schema(self, tp: Any) -> JSONDict:
        """The JSON Schema of a type annotation.

        Args:
            tp: a type or annotation.

        Returns:
            A schema dict (a ``$ref`` for attrs classes, whose definitions are in
            :attr:`components`).

        Raises:
            avl.errors.InvalidInputError: the annotation is not supported.
        """
        if tp is Any or tp is object:
            return {}
        if tp is _NoneType or tp is None:
            return {"type": "null"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            values = [m.value for m in tp]
            kind = "string" if all(isinstance(v, str) for v in values) else "integer"
            return {"type": kind, "enum": values}
        if isinstance(tp, type) and attrs.has(tp):
            return self._attrs(tp)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if _is_union(tp):
            members = [a for a in args if a is not _NoneType]
            nullable = len(members) < len(args)
            parts = [self.schema(a) for a in members]
            if nullable:
                if len(parts) == 1 and set(parts[0]) == {"type"}:
                    return {"type": [parts[0]["type"], "null"]}
                parts.append({"type": "null"})
            return parts[0] if len(parts) == 1 else {"anyOf": parts}
        if origin is typing.Literal:
            values = list(args)
            if all(isinstance(v, str) for v in values):
                return {"type": "string", "enum": values}
            return {"enum": values}
        if origin in (list, collections.abc.Sequence, set, frozenset):
            return {"type": "array", "items": self.schema(args[0]) if args else {}}
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.schema(args[0])}
            return {
                "type": "array",
                "prefixItems": [self.schema(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if origin in (dict, collections.abc.Mapping):
            return {"type": "object", "additionalProperties": self.schema(args[1]) if args else {}}
        raise InvalidInputError(f"cannot describe type {tp!r} in JSON Schema")

    def _attrs(self, cls: type) -> JSONDict:
        name = cls.__name__
        ref = {"$ref": f"#/components/schemas/{name}"}
        if name in self.components:
            return ref
        self.components[name] = {}  # placeholder: recursion-safe
        hints = _hints(cls)
        props: JSONDict = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            sub = dict(self.schema(hints[field.name]))
            meta = field.metadata
            for key, target in (
                ("description", "description"),
                ("min_length", "minLength"),
                ("max_length", "maxLength"),
                ("minimum", "minimum"),
                ("maximum", "maximum"),
            ):
                if key in meta:
                    if "$ref" in sub:
                        sub = {"allOf": [sub]}
                    sub[target] = meta[key]
            if "example" in meta:
                sub["examples"] = [meta["example"]]
            if field.default is attrs.NOTHING:
                required.append(field.name)
            props[field.name] = sub
        schema: JSONDict = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            schema["required"] = required
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].strip()
        if doc:
            schema["description"] = " ".join(doc.split())
        self.components[name] = schema
        return ref


def schema_for(tp: Any) -> tuple[JSONDict, dict[str, JSONDict]]:
    """The schema of one type and the components it needs.

    Args:
        tp: the type.

    Returns:
        ``(schema, components)``.

    Raises:
        avl.errors.InvalidInputError: an annotation is not supported.
    """
    builder = SchemaBuilder()
    return builder.schema(tp), builder.components


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _fail(path: str, expected: str, value: object) -> InvalidInputError:
    return InvalidInputError(f"{path}: expected {expected}, got {_type_name(value)}")


def _decode(tp: Any, value: object, path: str) -> Any:
    if tp is Any or tp is object:
        return value
    if tp is _NoneType or tp is None:
        if value is not None:
            raise _fail(path, "null", value)
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, "a boolean", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, "a number", value)
        if not math.isfinite(value):
            raise InvalidInputError(f"{path}: expected a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError as exc:
            allowed = ", ".join(repr(m.value) for m in tp)
            raise InvalidInputError(f"{path}: expected one of {allowed}, got {value!r}") from exc
    if isinstance(tp, type) and attrs.has(tp):
        return _decode_attrs(tp, value, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(tp):
        if value is None and _NoneType in args:
            return None
        errors = []
        for arg in args:
            if arg is _NoneType:
                continue
            try:
                return _decode(arg, value, path)
            except InvalidInputError as exc:
                errors.append(str(exc))
        raise InvalidInputError(errors[0] if len(errors) == 1 else f"{path}: no variant matched")
    if origin is typing.Literal:
        if value not in args:
            raise InvalidInputError(f"{path}: expected one of {list(args)!r}, got {value!r}")
        return value
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, list):
            raise _fail(path, "an array", value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise InvalidInputError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _decode(a, v, f"{path}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        items = [_decode(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        sub = args[1] if args else Any
        return {str(k): _decode(sub, v, f"{path}.{k}") for k, v in value.items()}
    raise InvalidInputError(f"{path}: unsupported type {tp!r}")


def _check_bounds(meta: Mapping[str, Any], value: object, path: str) -> None:
    if isinstance(value, str):
        if "min_length" in meta and len(value) < meta["min_length"]:
            raise InvalidInputError(f"{path}: must be at least {meta['min_length']} characters")
        if "max_length" in meta and len(value) > meta["max_length"]:
            raise InvalidInputError(f"{path}: must be at most {meta['max_length']} characters")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in meta and value < meta["minimum"]:
            raise InvalidInputError(f"{path}: must be >= {meta['minimum']}")
        if "maximum" in meta and value > meta["maximum"]:
            raise InvalidInputError(f"{path}: must be <= {meta['maximum']}")


def _decode_attrs(cls: type[T], value: object, path: str) -> T:
    if not isinstance(value, dict):
        raise _fail(path or "body", "a JSON object", value)
    hints = _hints(typing.cast(Any, cls))
    fields = {f.name: f for f in attrs.fields(typing.cast(Any, cls))}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise InvalidInputError(f"{path or 'body'}: unknown field(s) {unknown}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in value:
            if field.default is attrs.NOTHING:
                raise InvalidInputError(f"{sub}: required")
            continue
        decoded = _decode(hints[name], value[name], sub)
        _check_bounds(field.metadata, decoded, sub)
        kwargs[name] = decoded
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{path or 'body'}: {exc}") from exc


def decode(cls: type[T], value: object) -> T:
    """Build an attrs instance from parsed JSON, strictly.

    Unknown fields, missing required fields, wrong types and out-of-range values
    are refused with a message naming the field.

    Args:
        cls: the attrs class.
        value: the parsed JSON.

    Returns:
        The instance.

    Raises:
        avl.errors.InvalidInputError: the value does not match.
    """
    return _decode_attrs(cls, value, "")


def encode_value(value: object) -> Any:
    """Turn attrs instances, enums, tuples and mappings into plain JSON values.

    Args:
        value: any value.

    Returns:
        JSON-serialisable data (non-finite floats become ``None``; unknown objects
        their ``str``).
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return encode_value(value.value)
    if attrs.has(type(value)):
        return {
            f.name: encode_value(getattr(value, f.name))
            for f in attrs.fields(typing.cast(Any, type(value)))
            if not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode_value(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    tolist: Callable[[], object] | None = getattr(value, "tolist", None)
    if tolist is not None:
        return encode_value(tolist())
    return str(value)
