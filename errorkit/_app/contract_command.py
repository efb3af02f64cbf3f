"""`errorkit contract`: save the error contract of a catalog or an app, and check it has not broken.

    errorkit contract save myapp.main:app -o errors.lock.json     # commit the file
    errorkit contract check myapp.main:app errors.lock.json       # in CI: exit 1 on a breaking change
    errorkit contract check myapp.main:app errors.lock.json --format github

TARGET is what `errorkit docs` takes: a built-in catalog (`generic`, `detail_api`,
`envelope_api`) or `module:attribute` naming a `Registry`, an `ErrorKit` or an app a kit is
installed on; the contract lists exactly the codes its reference page lists (see
`errorkit._errors.contract`). `save` writes the lock file (stable JSON: sorted keys, 2-space
indents, a trailing newline, UTF-8) to `-o` or standard output; the lock file records the target.
`check` refuses a lock file saved of another target, then prints each change, breaking ones
first, then a summary line; `--format github` prints them as GitHub Actions annotations on the
lock file (a summary first, as GitHub shows only the first 10 errors of a step; then `::error`
for a breaking change, `::notice` for the rest) and, where GitHub gives a step summary file
(`GITHUB_STEP_SUMMARY`), adds the whole report to it in Markdown.

Exit status: 0 saved, or no breaking change; 1 breaking changes; 2 bad arguments, an unknown
target, a contract that cannot be made, a lock file (or standard output, or the step summary) that
cannot be read or written (one line on standard error, never a traceback).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from errorkit._errors.contract import Change, Contract, ContractError, diff
from errorkit._errors.reference import Reference

EXIT_OK = 0
EXIT_BREAKING = 1
EXIT_USAGE = 2
#: The title of every GitHub annotation.
TITLE = "errorkit contract"


def add_parser(commands: Any) -> dict[str, argparse.ArgumentParser]:
    """Add `contract` and its subcommands to the `errorkit` parser; returns them by name."""
    contract = commands.add_parser("contract", help="save an error contract, or check one has not broken")
    verbs = contract.add_subparsers(dest="verb", required=True)
    target = "generic, detail_api, envelope_api, or module:attribute (a Registry, an ErrorKit or an app)"

    save = verbs.add_parser("save", help="write the error contract of a catalog or an app")
    save.add_argument("target", help=target)
    save.add_argument("-o", "--output", type=Path, help="the lock file to write (default: stdout)")

    check = verbs.add_parser("check", help="compare a catalog or an app with a saved contract")
    check.add_argument("target", help=target)
    check.add_argument("lock", type=Path, help="the saved contract (errors.lock.json)")
    check.add_argument(
        "--format",
        choices=["text", "github"],
        default="text",
        help="text (default), or GitHub Actions annotations",
    )
    return {"save": save, "check": check}


def run(
    args: argparse.Namespace, fail: Callable[[str], NoReturn], reference_of: Callable[[str], Reference]
) -> tuple[int, str]:
    """Carry out `errorkit contract ...`: its exit status and what it prints on standard output (the caller
    writes it); `fail` reports a usage error (exit 2); `reference_of` loads TARGET."""
    try:
        current = Contract.of(reference_of(args.target), args.target)
    except ValueError as exc:
        fail(str(exc))

    if args.verb == "save":
        text = current.to_json()
        if args.output is None:
            return EXIT_OK, text
        try:
            args.output.write_bytes(text.encode("utf-8"))
        except OSError as exc:
            fail(f"cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_OK, f"{args.output}: the error contract of {args.target} ({len(current.codes)} codes)\n"

    saved = _saved(args.lock, fail)
    if saved.target != args.target:
        fail(
            f"{args.lock} is the contract of {saved.target}, not of {args.target} "
            f'(if {saved.target} was renamed, change "target" in {args.lock} in the same commit)'
        )
    changes = diff(saved, current)
    status = EXIT_BREAKING if any(change.breaking for change in changes) else EXIT_OK
    if args.format == "text":
        return status, "".join(f"{text_line(change)}\n" for change in changes) + summary(changes, args.lock) + "\n"

    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as file:
                file.write(markdown(changes, args.lock))
        except OSError as exc:
            fail(f"cannot write {step_summary}: {exc.strerror or exc}")
    lines = [github_summary(changes, args.lock)] if changes else []
    lines += [github_line(change, args.lock) for change in changes]
    return status, "".join(f"{line}\n" for line in [*lines, summary(changes, args.lock)])


def _saved(lock: Path, fail: Callable[[str], NoReturn]) -> Contract:
    """The contract saved in `lock`; `fail` says why it cannot be read."""
    try:
        text = lock.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {lock}: {getattr(exc, 'strerror', None) or exc}")
    try:
        return Contract.from_json(text)
    except ContractError as exc:
        fail(f"{lock} is {exc}")


def text_line(change: Change) -> str:
    """`breaking: quota_exceeded: status 402 -> 429 (...)` or `info: ...`."""
    return f"{'breaking' if change.breaking else 'info'}: {change}"


def github_line(change: Change, lock: Path) -> str:
    """A GitHub Actions workflow command: `::error file=...,title=errorkit contract::...` (or `::notice`)."""
    return _annotation(change.breaking, lock, str(change))


def github_summary(changes: list[Change], lock: Path) -> str:
    """The annotation that counts the changes (GitHub shows at most 10 errors of a step: this one first)."""
    return _annotation(any(change.breaking for change in changes), lock, summary(changes, lock))


def _annotation(breaking: bool, lock: Path, message: str) -> str:
    """`::error` (breaking) or `::notice` on the lock file, titled `errorkit contract`."""
    command = "error" if breaking else "notice"
    return f"::{command} file={_property(str(lock))},title={_property(TITLE)}::{_data(message)}"


def markdown(changes: list[Change], lock: Path) -> str:
    """The report as Markdown, for GitHub's step summary: a heading, the summary, a list of the changes."""
    lines = ["## errorkit contract", "", _escape(summary(changes, lock)), ""]
    lines += [f"- {'**breaking**' if change.breaking else 'info'}: {_escape(str(change))}" for change in changes]
    return "\n".join(lines).rstrip("\n") + "\n\n"


def _escape(text: str) -> str:
    """`text` as Markdown shows it as is: its markup characters escaped."""
    return "".join(f"\\{char}" if char in "\\`*_[]<>|#" else char for char in text)


def summary(changes: list[Change], lock: Path) -> str:
    """The last line: how many changes of each sort, against which lock file."""
    breaking = sum(change.breaking for change in changes)
    other = len(changes) - breaking
    if not changes:
        return f"errorkit contract: no change from {lock}"
    counts = [
        f"{breaking} breaking change{'s' if breaking != 1 else ''}" if breaking else "no breaking change",
        f"{other} other change{'s' if other != 1 else ''}" if other else "",
    ]
    said = ", ".join(part for part in counts if part)
    if breaking:
        return f"errorkit contract: {said} from {lock} (if intended, save the contract again and commit it)"
    return f"errorkit contract: {said} from {lock}"


def _data(text: str) -> str:
    """A workflow command's message, escaped as GitHub requires."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value, escaped as GitHub requires."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
