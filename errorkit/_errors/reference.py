"""Reference pages from a registry: Markdown and one self-contained HTML page.

A page has a quick-reference table, then one section per HTTP status (codes in status order,
then by code), and for every code its status, the routes that return it (when known), when it
happens, how to fix it, its details and a sample body in the kit's format. A `ReferencePage`
adds a catalog's own text (an introduction, notes under a code).
"""

from __future__ import annotations

import html
import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from errorkit._errors.definition import ErrorDefinition
from errorkit._errors.errors import APIError
from errorkit._errors.formats import ErrorContext, Format, status_phrase
from errorkit._errors.registry import Registry
from errorkit._errors.samples import sample_error

SAMPLE_REQUEST_ID = "5f0c2b8e9a1d4c7b0000000000000001"


@dataclass(frozen=True)
class Table:
    """A table in a page's own text."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]


#: A block of a page's own text: a paragraph, or a table.
Block = str | Table


@dataclass(frozen=True)
class ReferencePage:
    """What a reference page says besides its codes: a title, an introduction, notes under codes."""

    title: str = "Error reference"
    intro: Sequence[Block] = ()
    notes: Mapping[str, Sequence[Block]] = field(default_factory=dict)
    outro: Sequence[Block] = ()


@dataclass(frozen=True)
class _Entry:
    definition: ErrorDefinition
    details: list[tuple[str, str, bool]]  # name, type, required
    sample: str  # the JSON body


class Reference:
    """The reference of one registry in one format; `markdown()` and `html()` render it.

    By default the page lists every code of `registry`, and those of `defaults` it does not
    define. `listed` narrows the page to those classes (an app's page: what the app answers);
    a code of the registry or the defaults keeps a page of its own (`html(only=code)`) either way.
    `returned_by` maps a code to the operations that return it (`"POST /widgets"`), out of
    `operations` (all of them); `anywhere` names the codes any request can get (no route is named
    for them); `summary` is said under the page's introduction.
    """

    def __init__(
        self,
        registry: Registry,
        format: Format,
        *,
        doc_url: str | None = None,
        page: ReferencePage | None = None,
        defaults: Registry | None = None,
        listed: Iterable[type[APIError]] | None = None,
        returned_by: Mapping[str, Sequence[str]] | None = None,
        operations: Sequence[str] = (),
        anywhere: Iterable[str] = (),
        summary: Sequence[Block] = (),
    ) -> None:
        self.registry = registry
        self.format = format
        self.doc_url = doc_url
        self.page = page or ReferencePage()
        self.defaults = defaults  # codes answered from errorkit's own definitions when `registry` lacks them
        self.listed = None if listed is None else {cls.definition.code: cls for cls in listed}
        self.returned_by = dict(returned_by or {})
        self.operations = tuple(operations)
        self.anywhere = frozenset(anywhere)
        self.summary = tuple(summary)
        self._entries: dict[str, _Entry] = {}

    def classes(self) -> list[type[APIError]]:
        """Every code the page lists, by HTTP status, then code."""
        if self.listed is not None:
            found = list(self.listed.values())
        else:
            found = [self.registry[d.code] for d in self.registry]
            if self.defaults is not None:
                found += [self.defaults[d.code] for d in self.defaults if d.code not in self.registry]
        return sorted(found, key=lambda cls: (cls.definition.status, cls.definition.code))

    def codes(self) -> list[str]:
        """The codes the page lists, in its order."""
        return [cls.definition.code for cls in self.classes()]

    def __contains__(self, code: object) -> bool:
        """Whether `code` has a page: a code of the registry, of the defaults, or listed."""
        return (
            code in self.registry
            or (self.defaults is not None and code in self.defaults)
            or (self.listed is not None and code in self.listed)
        )

    def class_of(self, code: str) -> type[APIError]:
        """The class a code stands for on this page (the listed one, else the registry's, else the default)."""
        if self.listed is not None and code in self.listed:
            return self.listed[code]
        if code in self.registry or self.defaults is None:
            return self.registry[code]
        return self.defaults[code]

    def sample_body(self, cls: type[APIError], path: str = "/example") -> dict[str, Any]:
        """The body this format gives an error of class `cls`, with sample details."""
        error = sample_error(cls)
        return self.format.render(
            error, ErrorContext(SAMPLE_REQUEST_ID, path, cls.definition.doc_url_from(self.doc_url))
        )

    def sections(self) -> list[tuple[int, list[_Entry]]]:
        """The listed codes by HTTP status, statuses in increasing order."""
        by_status: dict[int, list[_Entry]] = {}
        for cls in self.classes():
            by_status.setdefault(cls.definition.status, []).append(self._entry(cls))
        return list(by_status.items())

    def _entry(self, cls: type[APIError]) -> _Entry:
        definition = cls.definition
        entry = self._entries.get(definition.code)
        if entry is None:
            entry = self._entries[definition.code] = _Entry(
                definition,
                [
                    (name, _type_name(f.annotation), f.is_required())
                    for name, f in definition.details.model_fields.items()
                ],
                json.dumps(self.sample_body(cls), indent=2, ensure_ascii=False, default=str),
            )
        return entry

    def routes_for(self, code: str) -> tuple[str, list[str]] | None:
        """Which operations return `code`, as a page says it: ("every route", []), ("every route
        except", [...]) or ("", [...]); None when the page does not know."""
        routes = self.returned_by.get(code)
        if not routes:
            return None
        missing = [op for op in self.operations if op not in routes]
        if len(self.operations) > 1 and not missing:
            return "every route", []
        if len(routes) > 3 and len(missing) < len(routes) and len(missing) <= 3:
            return "every route except", missing
        return "", list(routes)

    # -- Markdown --------------------------------------------------------------------------

    def markdown(self) -> str:
        lines = [f"# {self.page.title}", ""]
        lines += _markdown_blocks(self.page.intro)
        lines += _markdown_blocks(self.summary)
        sections = self.sections()

        lines += ["## Quick reference", "", "| HTTP status | code | meaning |", "|---|---|---|"]
        for status, entries in sections:
            for e in entries:
                d = e.definition
                lines.append(f"| {status} | [`{d.code}`](#{d.code}) | {_cell(_meaning(d))} |")
        lines.append("")

        for status, entries in sections:
            lines += [f"## {status} {status_phrase(status)}", ""]
            for e in entries:
                lines += self._markdown_entry(e)
        lines += _markdown_blocks(self.page.outro)
        return "\n".join(lines).rstrip() + "\n"

    def _markdown_entry(self, entry: _Entry) -> list[str]:
        d = entry.definition
        lines = [f'### <a id="{d.code}"></a>`{d.code}`', ""]
        lines += [f"**HTTP status:** {d.status} {status_phrase(d.status)}", ""]
        routes = self.routes_for(d.code)
        if routes is not None:
            said, named = routes
            shown = ", ".join(f"`{op}`" for op in named)
            lines += [f"**Returned by:** {' '.join(part for part in (said, shown) if part)}", ""]
        if d.when:
            lines += [f"**When this occurs:** {d.when}", ""]
        if d.fix:
            lines += [f"**How to fix it:** {d.fix}", ""]
        lines += _markdown_blocks(self.page.notes.get(d.code, ()))

        if entry.details:
            lines += ["**Details:**", "", "| name | type | required |", "|---|---|---|"]
            lines += [f"| `{n}` | {_cell(t)} | {'yes' if r else 'no'} |" for n, t, r in entry.details]
            lines.append("")

        lines += [f"**Retryable:** {_retry(d)}", "", "```json", entry.sample, "```", ""]
        return lines

    # -- HTML ------------------------------------------------------------------------------

    def html(self, only: str | None = None, index_url: str | None = None) -> str:
        """The whole page, or (`only`, a code the page knows) the page of one code, linking back to `index_url`."""
        title = self.page.title if only is None else f"{only} · {self.page.title}"
        body: list[str] = [f"<h1>{_h(self.page.title if only is None else only)}</h1>"]

        if only is not None:
            if index_url is not None:
                body.append(f'<p><a href="{_h(index_url)}">All errors</a></p>')
            body += self._html_entry(self._entry(self.class_of(only)))
            return _HTML_PAGE.format(title=_h(title), body="\n".join(body))

        sections = self.sections()
        body += _html_blocks(self.page.intro)
        body += _html_blocks(self.summary)
        body += [
            "<h2>Quick reference</h2>",
            "<table><tr><th>HTTP status</th><th>code</th><th>meaning</th></tr>",
        ]
        for status, entries in sections:
            for e in entries:
                d = e.definition
                body.append(
                    f'<tr><td>{status}</td><td><a href="#{d.code}"><code>{d.code}</code></a></td>'
                    f"<td>{_h(_meaning(d))}</td></tr>"
                )
        body.append("</table>")

        for status, entries in sections:
            body.append(f'<h2 id="status-{status}">{status} {_h(status_phrase(status))}</h2>')
            for e in entries:
                body += self._html_entry(e)
        body += _html_blocks(self.page.outro)
        return _HTML_PAGE.format(title=_h(title), body="\n".join(body))

    def _html_entry(self, entry: _Entry) -> list[str]:
        d = entry.definition
        out = [f'<section id="{d.code}">', f"<h3><code>{d.code}</code></h3>"]
        out.append(f"<p><b>HTTP status:</b> {d.status} {_h(status_phrase(d.status))}</p>")
        routes = self.routes_for(d.code)
        if routes is not None:
            said, named = routes
            shown = ", ".join(f"<code>{_h(op)}</code>" for op in named)
            out.append(f"<p><b>Returned by:</b> {' '.join(part for part in (said, shown) if part)}</p>")
        if d.when:
            out.append(f"<p><b>When this occurs:</b> {_h(d.when)}</p>")
        if d.fix:
            out.append(f"<p><b>How to fix it:</b> {_h(d.fix)}</p>")
        out += _html_blocks(self.page.notes.get(d.code, ()))

        if entry.details:
            out.append("<p><b>Details:</b></p><table><tr><th>name</th><th>type</th><th>required</th></tr>")
            out += [
                f"<tr><td><code>{n}</code></td><td>{_h(t)}</td><td>{'yes' if r else 'no'}</td></tr>"
                for n, t, r in entry.details
            ]
            out.append("</table>")

        out += [
            f"<p><b>Retryable:</b> {_retry(d)}</p>",
            f"<pre><code>{_h(entry.sample)}</code></pre>",
            "</section>",
        ]
        return out


def _meaning(definition: ErrorDefinition) -> str:
    """The first sentence of "when", else the message: a line of the quick reference."""
    when = definition.when
    end = when.find(". ")
    return (when[: end + 1] if end >= 0 else when) or definition.message


def _retry(definition: ErrorDefinition) -> str:
    """Whether (and after how long) a client may retry: `yes`, `yes, after 30 s` or `no`."""
    if not definition.retryable:
        return "no"
    return f"yes, after {definition.retry_after} s" if definition.retry_after else "yes"


def _type_name(annotation: Any) -> str:
    """`str`, `int or null`, `list of str`, `one of "PUBLIC", "WORKSPACE"`: a type as a reader says it."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)

    if origin is typing.Literal:
        return "one of " + ", ".join(json.dumps(a) for a in arguments)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in arguments)
    if origin in (list, tuple, set, frozenset):
        return "list of " + (_type_name(arguments[0]) if arguments else "values")
    if origin is dict or annotation is dict:
        return "object"

    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if isinstance(annotation, type):
        if annotation in names:
            return names[annotation]
        if annotation.__name__ == "datetime":
            return "ISO 8601 timestamp"
        return annotation.__name__
    return str(annotation)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_blocks(blocks: Iterable[Block]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            lines.append("| " + " | ".join(block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
        else:
            lines.append(block)
        lines.append("")
    return lines


def _html_blocks(blocks: Iterable[Block]) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            out.append("<table><tr>" + "".join(f"<th>{_h(h)}</th>" for h in block.header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block.rows]
            out.append("</table>")
        else:
            out.append(f"<p>{_h(block)}</p>")
    return out


def _h(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")


_HTML_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }}
code, pre {{ font: 14px/1.4 ui-monospace, monospace; }}
pre {{ background: #f4f4f5; padding: .75rem; overflow-x: auto; border-radius: 4px; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; }}
th, td {{ border: 1px solid #d4d4d8; padding: .25rem .5rem; text-align: left; vertical-align: top; }}
section {{ border-top: 1px solid #e4e4e7; margin-top: 1.5rem; }}
h2 + section {{ border-top: none; margin-top: 0; }}
h3 code {{ font-size: 1.15rem; font-weight: 600; }}
p code, td code {{ background: #f4f4f5; padding: 0 .25em; border-radius: 3px; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
