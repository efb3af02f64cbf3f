"""Error contracts: what a catalog's or an app's errors promise clients, saved as stable JSON and compared.

A `Contract` is made from a `Reference` (the very list of codes its reference page shows): the body
format, the doc URL template, the operations of the app's OpenAPI document (where it has one) and,
for each code, its status, texts, retry hints, details (each with its JSON Schema, the readable
type and whether it is required) and the routes that return it (None: any request, or unknown).

`diff(old, new)` lists the changes from a saved contract to the current one, each a `Change` that
is breaking when a client that follows the old contract (or code raising from a shared catalog)
must change: a code removed, a status changed, a required detail added or made required, a detail
removed, made optional or widened (a value the old schema did not allow), `retryable` switched off,
a route that can return a code it did not document, the format changed. The rest is information.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from errorkit._common.exceptions import ErrorkitError
from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.reference import Reference, _type_name

#: The version of the lock file's layout (its `errorkit_contract` key).
VERSION = 1

#: Schema keywords that describe rather than constrain: left out of a detail's stored schema.
_ANNOTATIONS = frozenset({"title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly"})
#: Subschemas a schema holds (a list of them, one, or a mapping of names to them).
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not")
_SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")


class ContractError(ErrorkitError, ValueError):
    """A lock file that cannot be read: not JSON, not a contract, or one of another version."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DetailContract(_Model):
    """One detail of a code: its type as a reader reads it, its JSON Schema, whether it is always given."""

    type: str
    json_schema: dict[str, Any]
    required: bool


class CodeContract(_Model):
    """What a code promises: status, texts, retry hints, details, and the routes that return it."""

    status: int
    title: str
    message: str
    when: str
    fix: str
    retryable: bool
    retry_after: int | None
    doc_url: str | None  # its own doc URL (else the contract's template, filled with the code)
    details: dict[str, DetailContract]
    routes: tuple[str, ...] | None  # None: from any request, or unknown


class FormatContract(_Model):
    name: str
    media_type: str


class Contract(_Model):
    """The error contract of a catalog or an app (see the module's docstring)."""

    format: FormatContract
    doc_url: str | None
    operations: tuple[str, ...]
    codes: dict[str, CodeContract]

    @classmethod
    def of(cls, reference: Reference) -> Contract:
        """The contract of what `reference` lists (a catalog's page, or an app's)."""
        codes = {}
        for error_class in reference.classes():
            definition = error_class.definition
            routes = reference.returned_by.get(definition.code)
            codes[definition.code] = _code_contract(definition, tuple(sorted(routes)) if routes else None)
        return cls(
            format=FormatContract(
                name=reference.format.name or type(reference.format).__name__,
                media_type=reference.format.media_type,
            ),
            doc_url=reference.doc_url,
            operations=tuple(sorted(reference.operations)),
            codes=dict(sorted(codes.items())),
        )

    def to_json(self) -> str:
        """The lock file: sorted keys, 2-space indents, a trailing newline."""
        data = {"errorkit_contract": VERSION, **self.model_dump(mode="json")}
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Contract:
        """Read a lock file's text; `ContractError` says why it cannot be read."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ContractError(f"not JSON ({exc})") from None
        if not isinstance(data, dict) or "errorkit_contract" not in data:
            raise ContractError('not an errorkit contract (no "errorkit_contract" key)')
        version = data.pop("errorkit_contract")
        if version != VERSION:
            raise ContractError(
                f"a contract of version {version!r}, and this errorkit reads version {VERSION}: "
                "save it again with `errorkit contract save`"
            )
        try:
            return cls.model_validate_json(json.dumps(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ContractError(f"not a valid errorkit contract: {where}: {first['msg']}") from None


def _code_contract(definition: ErrorDefinition, routes: tuple[str, ...] | None) -> CodeContract:
    schema = definition.details.model_json_schema(mode="serialization")
    defs = schema.get("$defs", {})
    properties = schema.get("properties", {})
    return CodeContract(
        status=definition.status,
        title=definition.title,
        message=definition.message,
        when=definition.when,
        fix=definition.fix,
        retryable=definition.retryable,
        retry_after=definition.retry_after,
        doc_url=definition.doc_url,
        details={
            name: DetailContract(
                type=_type_name(field.annotation),
                json_schema=_clean(_inline(properties.get(name, {}), defs, ())),
                required=field.is_required(),
            )
            for name, field in sorted(definition.details.model_fields.items())
        },
        routes=routes,
    )


def _inline(schema: Any, defs: Mapping[str, Any], seen: tuple[str, ...]) -> Any:
    """`schema` with its `$ref`s to `defs` replaced by what they name (a recursive one stays a `$ref`)."""
    if isinstance(schema, list):
        return [_inline(item, defs, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in defs and name not in seen:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return _inline({**defs[name], **rest}, defs, (*seen, name))
    return {key: _inline(value, defs, seen) for key, value in schema.items() if key != "$defs"}


def _clean(schema: Any) -> Any:
    """`schema` without annotations (titles, descriptions, defaults), in each of its subschemas."""
    if not isinstance(schema, dict):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key in _SUBSCHEMA_LISTS and isinstance(value, list):
            value = [_clean(item) for item in value]
        elif key in _SUBSCHEMA_ONE:
            value = _clean(value)
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            value = {name: _clean(sub) for name, sub in value.items()}
        cleaned[key] = value
    return cleaned


# -- Comparing detail schemas -----------------------------------------------------------------


def accepts(old: Any, new: Any) -> bool:
    """Whether every value `new` allows was allowed by `old` (so a client reading the old type still can)."""
    return all(any(_covers(o, n) for o in _alternatives(old)) for n in _alternatives(new))


def _alternatives(schema: Any) -> list[dict[str, Any]]:
    """`schema` as a union of simpler schemas: anyOf/oneOf flattened, a list of types split."""
    if schema is True or schema is None:
        return [{}]
    if not isinstance(schema, dict):
        return [_NOTHING]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            return [alt for option in schema[key] for alt in _alternatives({**rest, **option})]
    types = schema.get("type")
    if isinstance(types, list):
        return [{**schema, "type": t} for t in types]
    return [schema]


def _covers(old: dict[str, Any], new: dict[str, Any]) -> bool:
    if new == _NOTHING or not old:
        return True  # (no value, or any value)
    if not new or old == _NOTHING:
        return False
    if "const" in new or "enum" in new:
        values = [new["const"]] if "const" in new else list(new["enum"])
        return all(_allows(old, value) for value in values)
    if "const" in old or "enum" in old:
        return False
    old_type, new_type = old.get("type"), new.get("type")
    if old_type != new_type and not (old_type == "number" and new_type == "integer"):
        return False
    if "format" in old and new.get("format") != old["format"]:
        return False
    if new_type == "array" and not accepts(old.get("items", {}), new.get("items", {})):
        return False
    if new_type == "object":
        if set(old) - {"type", "additionalProperties"}:
            return _structure(old) == _structure(new)  # (an object with properties: compared whole)
        if not accepts(_extra(old), _extra(new)):
            return False
    # other constraints (lengths, bounds, patterns): the same, or the schema changed
    ignored = {"type", "format", "items", "additionalProperties"}
    return all(new.get(key) == value for key, value in old.items() if key not in ignored)


#: A schema no value fits.
_NOTHING: dict[str, Any] = {"not": {}}


def _extra(schema: dict[str, Any]) -> Any:
    """What an object's values may be, as a schema (`additionalProperties`: true, false or a schema)."""
    extra = schema.get("additionalProperties", True)
    return {} if extra is True else _NOTHING if extra is False else extra


def _allows(schema: dict[str, Any], value: Any) -> bool:
    """Whether one JSON `value` fits `schema` (as far as its type, const and enum go)."""
    if "const" in schema:
        return bool(schema["const"] == value)
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    return kinds.get(kind, False)


def _structure(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True)


# -- Changes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between two contracts: `code` None for the whole contract, else a code (or a route)."""

    kind: str
    code: str | None
    breaking: bool
    message: str

    def __str__(self) -> str:
        return f"{self.code or 'every code'}: {self.message}"


#: Every kind of change, breaking ones first, in the order `diff` reports them.
BREAKING = (
    "format_changed",
    "code_removed",
    "status_changed",
    "detail_removed",
    "detail_type_widened",
    "detail_now_optional",
    "detail_required_added",
    "detail_now_required",
    "retryable_off",
    "route_gained_code",
)
INFORMATION = (
    "doc_url_changed",
    "code_added",
    "detail_optional_added",
    "detail_type_narrowed",
    "message_changed",
    "title_changed",
    "doc_text_changed",
    "retryable_on",
    "retry_after_changed",
    "route_dropped_code",
    "route_added",
    "route_removed",
)


def diff(old: Contract, new: Contract) -> list[Change]:
    """The changes from `old` (a saved contract) to `new`: breaking ones first, then by code."""
    changes = list(_contract_changes(old, new))
    for code in sorted(old.codes.keys() | new.codes.keys()):
        changes += _code_changes(code, old, new)
    changes += _route_changes(old, new)
    return sorted(changes, key=lambda change: not change.breaking)


def _contract_changes(old: Contract, new: Contract) -> Iterator[Change]:
    if old.format != new.format:
        before, after = old.format.name, new.format.name
        if old.format.media_type != new.format.media_type:
            before, after = f"{before} ({old.format.media_type})", f"{after} ({new.format.media_type})"
        yield Change(
            "format_changed",
            None,
            True,
            f"format {before} -> {after} (every error body changes shape: clients reading {old.format.name} "
            "bodies will not find the code, message or details where they were)",
        )
    if old.doc_url != new.doc_url:
        yield Change("doc_url_changed", None, False, f"doc URL template {_url(old.doc_url)} -> {_url(new.doc_url)}")


def _code_changes(code: str, old_contract: Contract, new_contract: Contract) -> Iterator[Change]:
    old, new = old_contract.codes.get(code), new_contract.codes.get(code)
    if new is None:
        assert old is not None
        yield Change(
            "code_removed",
            code,
            True,
            f"code removed (status {old.status}: clients matching it will get another code in its place)",
        )
        return
    if old is None:
        yield Change("code_added", code, False, f"new code (status {new.status})")
        yield from _gained_routes(code, None, new, old_contract)
        return

    if old.status != new.status:
        yield Change(
            "status_changed",
            code,
            True,
            f"status {old.status} -> {new.status} (clients branching on {old.status} will miss it)",
        )
    yield from _detail_changes(code, old, new)
    if old.retryable and not new.retryable:
        yield Change(
            "retryable_off",
            code,
            True,
            "no longer retryable (x-should-retry is now false: clients that retried it will give up)",
        )
    if not old.retryable and new.retryable:
        yield Change("retryable_on", code, False, "now retryable (x-should-retry: true)")
    if old.retry_after != new.retry_after:
        yield Change(
            "retry_after_changed",
            code,
            False,
            f"Retry-After {_seconds(old.retry_after)} -> {_seconds(new.retry_after)}",
        )
    if old.message != new.message:
        yield Change("message_changed", code, False, f"message {_quote(old.message)} -> {_quote(new.message)}")
    if old.title != new.title:
        yield Change("title_changed", code, False, f"title {_quote(old.title)} -> {_quote(new.title)}")
    texts = [name for name in ("when", "fix") if getattr(old, name) != getattr(new, name)]
    if texts:
        yield Change("doc_text_changed", code, False, f"documentation text changed ({', '.join(texts)})")
    if old.doc_url != new.doc_url:
        yield Change("doc_url_changed", code, False, f"doc URL {_url(old.doc_url)} -> {_url(new.doc_url)}")
    yield from _gained_routes(code, old, new, old_contract)


def _detail_changes(code: str, old: CodeContract, new: CodeContract) -> Iterator[Change]:
    for name in sorted(old.details.keys() | new.details.keys()):
        before, after = old.details.get(name), new.details.get(name)
        if after is None:
            yield Change("detail_removed", code, True, f"detail {name} removed (clients reading it will not find it)")
            continue
        if before is None:
            if after.required:
                yield Change(
                    "detail_required_added",
                    code,
                    True,
                    f"new required detail {name} ({after.type}) (every raise of {code} must now pass it)",
                )
            else:
                yield Change("detail_optional_added", code, False, f"new optional detail {name} ({after.type})")
            continue
        if before.json_schema != after.json_schema:
            if accepts(before.json_schema, after.json_schema):
                yield Change(
                    "detail_type_narrowed",
                    code,
                    False,
                    f"detail {name} type {before.type} -> {after.type} (narrower: clients read it as before)",
                )
            else:
                yield Change(
                    "detail_type_widened",
                    code,
                    True,
                    f"detail {name} type {before.type} -> {after.type} "
                    f"(clients reading it as {before.type} may get a value they cannot parse)",
                )
        if before.required and not after.required:
            yield Change(
                "detail_now_optional",
                code,
                True,
                f"detail {name} no longer required (clients reading it may not find it)",
            )
        if not before.required and after.required:
            yield Change(
                "detail_now_required",
                code,
                True,
                f"detail {name} now required (every raise of {code} must now pass it)",
            )


def _gained_routes(code: str, old: CodeContract | None, new: CodeContract, old_contract: Contract) -> Iterator[Change]:
    """A route of the old contract that can now return `code` without having documented it (or the reverse)."""
    before = None if old is None else old.routes
    existed = set(old_contract.operations)
    if new.routes is None:
        if old is not None and before is not None:
            yield Change(
                "route_gained_code",
                code,
                True,
                f"now returned by any route (was only {_routes(before)}: clients of the others do not expect it)",
            )
        return
    gained = [route for route in new.routes if route in existed and (before is None or route not in before)]
    if gained and not (old is not None and before is None):
        yield Change(
            "route_gained_code",
            code,
            True,
            f"now returned by {_routes(gained)}, which did not document it (clients of "
            f"{'that route' if len(gained) == 1 else 'those routes'} do not expect it)",
        )
    if old is not None:
        if before is None:
            yield Change(
                "route_dropped_code", code, False, f"now returned only by {_routes(new.routes)} (was any route)"
            )
        else:
            dropped = [route for route in before if route not in new.routes]
            if dropped:
                yield Change("route_dropped_code", code, False, f"no longer returned by {_routes(dropped)}")


def _route_changes(old: Contract, new: Contract) -> Iterator[Change]:
    for route in new.operations:
        if route not in old.operations:
            yield Change("route_added", route, False, "new route")
    for route in old.operations:
        if route not in new.operations:
            yield Change("route_removed", route, False, "route removed")


def _routes(routes: Iterable[str]) -> str:
    return ", ".join(routes)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _url(url: str | None) -> str:
    return url if url is not None else "none"


def _seconds(seconds: int | None) -> str:
    return f"{seconds} s" if seconds is not None else "none"


__all__ = [
    "BREAKING",
    "INFORMATION",
    "VERSION",
    "Change",
    "CodeContract",
    "Contract",
    "ContractError",
    "DetailContract",
    "FormatContract",
    "accepts",
    "diff",
]
