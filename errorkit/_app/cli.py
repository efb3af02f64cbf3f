"""The `errorkit` command (also `python -m errorkit`): reference pages from a catalog,
`errorkit keys ...` (see `errorkit._app.keys_command`), `errorkit store init|check`
(see `errorkit._app.store_command`) and `errorkit contract save|check` (see `errorkit._app.contract_command`).

    errorkit docs envelope_api                      # Markdown on stdout
    errorkit docs detail_api --html -o errors.html
    errorkit docs myapp.errors:kit --doc-url 'https://docs.example.com/errors/{code}'
    errorkit docs myapp.main:app --html -o errors.html  # an app's page, as its /errors/ serves it
    errorkit docs --write docs/reference            # the built-in catalogs, .md and .html

A catalog is a built-in name (`generic`, `detail_api`, `envelope_api`) or `module:attribute`
naming a `Registry`, an `ErrorKit` (its catalog's page) or an app a kit is installed on (that
app's page: what it can answer with). Exit status: 0 done, 2 bad arguments, a target that
cannot be loaded or whose page cannot be made (its start-up checks fail, its own `openapi()`
raises), or a file that cannot be written (one line on standard error, never a traceback).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette

from errorkit import catalogs
from errorkit._app import contract_command, keys_command, store_command
from errorkit._app.kit import ErrorKit
from errorkit._app.openapi import app_reference, installed_handler, mounted_page
from errorkit._errors.formats import FORMATS
from errorkit._errors.reference import Reference
from errorkit._errors.registry import Registry
from errorkit.catalogs.pages import PAGES

BUILT_IN = {"generic": catalogs.GENERIC, "detail_api": catalogs.DETAIL_API, "envelope_api": catalogs.ENVELOPE_API}


def reference_of(name: str, *, format: str | None = None, doc_url: str | None = None) -> Reference:
    """The reference of a built-in catalog or of `module:attribute` (a Registry, an ErrorKit, or an app
    an ErrorKit is installed on)."""
    target: object
    if name in BUILT_IN:
        target = BUILT_IN[name]
    elif ":" in name:
        module, _, attribute = name.partition(":")
        try:
            target = getattr(importlib.import_module(module), attribute)
        except Exception as exc:  # whatever the module's own import raises: a message, not a traceback
            raise ValueError(f"cannot load {name!r}: {type(exc).__name__}: {exc}") from None
    else:
        raise ValueError(f"unknown catalog {name!r}: use one of {sorted(BUILT_IN)} or module:attribute")

    if isinstance(target, Starlette):
        handler = installed_handler(target)
        if handler is None:
            raise ValueError(f"{name!r} is an app no ErrorKit is installed on (kit.install(app))")
        if format is not None or doc_url is not None:
            raise ValueError("an app's page is in its kit's format, with its doc URLs: drop --format and --doc-url")
        try:
            return app_reference(target, handler, mounted_page(target, handler))
        except Exception as exc:  # the app's start-up checks, or its own openapi(): a message, not a traceback
            raise ValueError(f"cannot make the page of {name!r}: {type(exc).__name__}: {exc}") from None
    if isinstance(target, Registry):
        kit = ErrorKit(catalog=target, format=format, doc_url=doc_url)
    elif isinstance(target, ErrorKit):
        kit = target
        if format is not None or doc_url is not None:  # the same catalog, with what was asked for
            kit = ErrorKit(catalog=target.registry, format=format or target.format, doc_url=doc_url or target.doc_url)
    else:
        raise ValueError(f"{name!r} is a {type(target).__name__}, not a Registry, an ErrorKit or an app")
    return kit.reference(page=PAGES.get(name))


def write_built_in(folder: Path) -> list[Path]:
    """Write the Markdown and HTML pages of the built-in catalogs into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in BUILT_IN:
        reference = reference_of(name)
        pages = {".md": reference.markdown(), ".html": reference.html()}
        for suffix, text in pages.items():
            path = folder / f"{name}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="errorkit", description="errorkit's command line")
    commands = parser.add_subparsers(dest="command", required=True)
    docs = commands.add_parser("docs", help="render a catalog's or an app's reference page")
    docs.add_argument(
        "catalog",
        nargs="?",
        help="generic, detail_api, envelope_api, or module:attribute (a Registry, an ErrorKit or an app)",
    )
    docs.add_argument("--html", action="store_true", help="one self-contained HTML page instead of Markdown")
    docs.add_argument("--format", choices=sorted(FORMATS), help="body format of the samples")
    docs.add_argument("--doc-url", help="doc URL template, e.g. https://docs.example.com/errors/{code}")
    docs.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    docs.add_argument("--write", type=Path, metavar="FOLDER", help="write the built-in catalogs' pages there")
    verbs = keys_command.add_parser(commands)
    store_verbs = store_command.add_parser(commands)
    contract_verbs = contract_command.add_parser(commands)

    args = parser.parse_args(argv)
    # as uvicorn does, `errorkit docs myapp:kit` (and `contract`) find ./myapp.py: the command's choice,
    # made here, since `reference_of` is a library function that leaves the import path alone
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if args.command == "keys":
        return keys_command.run(args, verbs[args.verb].error)
    if args.command == "store":
        return store_command.run(args, store_verbs[args.verb].error)
    if args.command == "contract":
        verb = contract_verbs[args.verb]
        status, said = contract_command.run(args, verb.error, reference_of)
        return _to_stdout(said, verb.prog, status)

    if args.write is not None:
        try:
            written = write_built_in(args.write)
        except OSError as exc:
            return _cannot_write(exc, docs.prog)
        return _to_stdout("".join(f"{path}\n" for path in written), docs.prog)

    if args.catalog is None:
        docs.error("name a catalog, or use --write FOLDER")
    try:
        reference = reference_of(args.catalog, format=args.format, doc_url=args.doc_url)
    except ValueError as exc:
        docs.error(str(exc))

    text = reference.html() if args.html else reference.markdown()
    if args.output is None:
        return _to_stdout(text, docs.prog)
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        return _cannot_write(exc, docs.prog)
    return 0


def _to_stdout(text: str, prog: str, status: int = 0) -> int:
    """Write `text` to standard output in UTF-8 and return `status`; when it cannot be written (closed,
    a full disk, a closed pipe), one line on standard error and 2."""
    stdout = sys.stdout
    try:
        if stdout is None:  # (started with standard output closed: `>&-`)
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        stdout.flush()
        if hasattr(stdout, "buffer"):
            stdout.buffer.write(text.encode("utf-8"))
            stdout.buffer.flush()
        else:  # (a text stream put in its place)
            stdout.write(text)
            stdout.flush()
    except OSError as exc:
        if stdout is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout.fileno())  # (nothing left to flush at exit)
            os.close(devnull)
        return _cannot_write(exc, prog)
    return status


def _cannot_write(exc: OSError, prog: str) -> int:
    """A file, a folder or standard output that cannot be written: one line naming it and why (exit 2)."""
    where = exc.filename if exc.filename is not None else "standard output"
    print(f"{prog}: error: cannot write {where!s}: {exc.strerror or exc}", file=sys.stderr)
    return 2


__all__ = ["main", "reference_of", "write_built_in"]
