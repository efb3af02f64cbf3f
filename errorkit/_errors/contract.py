"""Error contracts: what a catalog's or an app's errors promise clients, saved as stable JSON and compared.

A `Contract` is made from a `Reference` (the very list of codes its reference page shows): the target
it was made of, the body format, the doc URL template, the operations of the app's OpenAPI document
(where it has one) and, for each code, its status, texts, retry hints, details (each with its JSON
Schema, the readable type, whether a raise must pass it and whether a body always holds it) and the
routes that return it (`"any"`: any request can, or the contract names no routes; else the routes of
the document that declare it, none when no route does).

`diff(old, new)` lists the changes from a saved contract to the current one, each a `Change` that
is breaking when a client that follows the old contract, or code raising the error from a shared
catalog, must change. For clients: a code removed, a status changed, a detail removed, widened (a
value the old schema did not allow) or no longer always in the body, `retryable` switched off, a
route that can return a code it did not document, the format changed. For raisers: a required
detail added, a detail made required, a detail narrowed (a value the old schema allowed now fails
the raise). The rest is information.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from errorkit._common.exceptions import ErrorkitError
from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.reference import Reference, _type_name

#: The version of the lock file's layout (its `errorkit_contract` key). Bump it with any change to the
#: layout once released: the models below forbid unknown keys (extra="forbid"), so a new field, a field
#: removed or renamed, or a value read differently all make a lock file another errorkit cannot read.
VERSION = 1

#: Schema keywords that describe rather than constrain: left out of a detail's stored schema.
_ANNOTATIONS = frozenset({"title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly"})
#: Subschemas a schema holds (a list of them, one, or a mapping of names to them).
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not")
_SUBSCHEMA_MAPS = ("properties", "$defs", "patternProperties")
#: Keywords whose value is JSON Schema's default (as if left out): dropped, so that pydantic's releases agree
#: (2.14 writes `"additionalProperties": true` where 2.10 writes nothing).
_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "additionalProperties": (True, {}),
    "items": (True, {}),
    "uniqueItems": (False,),
    "minLength": (0,),
    "minItems": (0,),
    "minProperties": (0,),
    "required": ([],),
    "properties": ({},),
    "patternProperties": ({},),
}
#: Keywords whose list is a set (its order says nothing): sorted.
_UNORDERED = ("required", "enum", "type")


class ContractError(ErrorkitError, ValueError):
    """A contract that cannot be made (details without a JSON Schema), or a lock file that cannot be read:
    not JSON, not a contract, or one of another version."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DetailContract(_Model):
    """One detail of a code: its type as a reader reads it, its JSON Schema, whether a raise must pass it
    (`required`) and whether a body always holds it (`always_present`: required or given a default, and
    never None, since a body leaves out the details that are None)."""

    type: str
    json_schema: dict[str, Any]
    required: bool
    always_present: bool


#: The routes that return a code: "any" (any request can, or the contract names no routes), else the
#: operations of the app's OpenAPI document that declare it (none: no route does).
Routes = Literal["any"] | tuple[str, ...]


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
    routes: Routes


class FormatContract(_Model):
    name: str
    media_type: str


class Contract(_Model):
    """The error contract of a catalog or an app (see the module's docstring); `target` is what it was made
    of, as `errorkit contract save` was given it (`myapp.main:app`)."""

    target: str
    format: FormatContract
    doc_url: str | None
    operations: tuple[str, ...]
    codes: dict[str, CodeContract]

    @classmethod
    def of(cls, reference: Reference, target: str) -> Contract:
        """The contract of what `reference` lists (a catalog's page, or an app's), made of `target`;
        `ContractError` when a code's details have no JSON Schema."""
        codes = {}
        for error_class in reference.classes():
            definition = error_class.definition
            codes[definition.code] = _code_contract(definition, _routes_of(reference, definition.code))
        return cls(
            target=target,
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
        except RecursionError:
            raise ContractError("not a valid errorkit contract: nested too deeply") from None
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


def _routes_of(reference: Reference, code: str) -> Routes:
    """The routes that return `code`: "any" for a code any request can get (the handlers' 404, 405, 500) or
    when `reference` names no routes; else those its OpenAPI document names (none: no route declares it)."""
    if not reference.operations or code in reference.anywhere:
        return "any"
    return tuple(sorted(reference.returned_by.get(code, ())))


def _code_contract(definition: ErrorDefinition, routes: Routes) -> CodeContract:
    """What `definition` promises; `ContractError` when its details have no JSON Schema."""
    try:
        # by field name, not alias: a body holds the details model's dump, which is by name (ErrorDefinition)
        schema = definition.details.model_json_schema(by_alias=False, mode="serialization")
    except Exception as exc:  # a type pydantic cannot describe (arbitrary_types_allowed), a model's own hook
        reason = getattr(exc, "message", None) or str(exc)
        raise ContractError(
            f"the details of {definition.code!r} have no JSON Schema: {type(exc).__name__}: {reason.splitlines()[0]}"
        ) from None
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
            name: _detail_contract(field, _clean(_inline(properties.get(name, {}), defs, ())))
            for name, field in sorted(definition.details.model_fields.items())
        },
        routes=routes,
    )


def _detail_contract(field: FieldInfo, schema: dict[str, Any]) -> DetailContract:
    """A detail of type `schema`: always in a body when a raise gives it a value that cannot be None (the body
    is dumped without the details that are None)."""
    given = field.is_required() or field.default_factory is not None or field.default is not None
    nullable = any(_allows(alternative, None) for alternative in _alternatives(schema))
    return DetailContract(
        type=_type_name(field.annotation),
        json_schema=schema,
        required=field.is_required(),
        always_present=given and not nullable,
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
    """`schema` in a normal form, in each of its subschemas: without annotations (titles, descriptions,
    defaults) nor keywords at their default value, with the lists that are sets (`required`, `enum`, a list
    of types) sorted. Two pydantic releases, or two orders of the same fields, give the same form."""
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
        if key in _UNORDERED and isinstance(value, list):
            value = sorted(value, key=_structure)
        if any(type(value) is type(default) and value == default for default in _DEFAULTS.get(key, ())):
            continue
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


def _structure(value: Any) -> str:
    """`value` (a schema, a JSON value) as text that is the same for equal values: keys sorted."""
    return json.dumps(value, sort_keys=True)


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
    "detail_type_narrowed",
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
        yield from _code_route_changes(code, None, new, old_contract, new_contract)
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
    yield from _code_route_changes(code, old, new, old_contract, new_contract)


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
        yield from _detail_type_changes(code, name, before, after)
        if before.always_present and not after.always_present:
            yield Change(
                "detail_now_optional",
                code,
                True,
                f"detail {name} no longer always present (clients reading it may not find it)",
            )
        if not before.required and after.required:
            yield Change(
                "detail_now_required",
                code,
                True,
                f"detail {name} now required (every raise of {code} must now pass it)",
            )


def _detail_type_changes(code: str, name: str, before: DetailContract, after: DetailContract) -> Iterator[Change]:
    """A detail's schema that allows more values (breaking for its clients) or fewer (breaking for its
    raisers); none when each schema allows every value of the other (the same type, written otherwise)."""
    narrower = accepts(before.json_schema, after.json_schema)
    if before.json_schema == after.json_schema or (narrower and accepts(after.json_schema, before.json_schema)):
        return
    if before.type == after.type:
        said = f"detail {name} schema changed, still {after.type}"
    else:
        said = f"detail {name} type {before.type} -> {after.type}"
    if narrower:
        yield Change(
            "detail_type_narrowed",
            code,
            True,
            f"{said} (narrower: clients read it as before, but a raise of {code} with a value it no longer "
            "allows fails)",
        )
    else:
        yield Change(
            "detail_type_widened",
            code,
            True,
            f"{said} (clients reading it as {before.type} may get a value they cannot parse)",
        )


def _code_route_changes(
    code: str, old: CodeContract | None, new: CodeContract, old_contract: Contract, new_contract: Contract
) -> Iterator[Change]:
    """The routes of the saved contract that can now return `code` without having documented it (breaking),
    and those that no longer return it. Compared only where both contracts name routes."""
    if not old_contract.operations or not new_contract.operations:
        return
    before = _returning(old.routes if old is not None else (), old_contract)
    after = _returning(new.routes, new_contract)
    gained = sorted(after & set(old_contract.operations) - before)
    if gained and new.routes == "any":
        if before:
            was = f"was only {_routes(sorted(before))}: clients of the others do not expect it"
        else:
            was = "was none: no client expects it"
        yield Change("route_gained_code", code, True, f"now returned by any route ({was})")
    elif gained:
        yield Change(
            "route_gained_code",
            code,
            True,
            f"now returned by {_routes(gained)}, which did not document it (clients of "
            f"{'that route' if len(gained) == 1 else 'those routes'} do not expect it)",
        )
    dropped = sorted(before - after)
    if old is None or new.routes == "any" or not dropped:
        return
    if old.routes == "any":
        now = f"now returned only by {_routes(new.routes)}" if new.routes else "now returned by no route"
        yield Change("route_dropped_code", code, False, f"{now} (was any route)")
    else:
        yield Change("route_dropped_code", code, False, f"no longer returned by {_routes(dropped)}")


def _returning(routes: Routes, contract: Contract) -> set[str]:
    """The operations of `contract` that return a code (`routes`: "any" is every one of them)."""
    return set(contract.operations) if routes == "any" else set(routes)


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
