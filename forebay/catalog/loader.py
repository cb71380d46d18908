"""Reading spec files (JSON or YAML) and following the `$ref`s inside them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from forebay.errors import SpecError

# The C loader parses a large spec several times faster and reports the same marks.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_SUFFIXES = frozenset({".yaml", ".yml"})
# Two letters at least, so a Windows drive (`C:\specs\pet.yaml`) is not read as a scheme.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")

# A reached container's `(parent, piece)` trail; formatted only when a problem is reported.
_Trail = tuple[Any, str] | None


class RefError(Exception):
    """A `$ref` that cannot be followed; the message names the ref and the reason."""


def kind_of(value: object) -> str:
    """How a problem message names the type of a parsed value."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def read_spec(path: Path, display: str) -> Any:
    """Parse the file at `path`; `display` is how errors name it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(display, "", "file not found") from None
    except IsADirectoryError:
        raise SpecError(display, "", "is a directory, not a file") from None
    except OSError as exc:
        raise SpecError(display, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(display, f"byte {exc.start}", "file is not UTF-8 text") from None
    return parse_text(text, display, path.suffix.lower())


def parse_text(text: str, display: str, suffix: str = "") -> Any:
    """Parse JSON or YAML, chosen by what the text looks like rather than the file name.

    Text that opens with `{` or `[` is JSON unless the file calls itself YAML, in which
    case a YAML flow mapping (`{a: 1}`) is still given its chance.
    """
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if suffix not in _YAML_SUFFIXES:
                place = f"line {exc.lineno}, column {exc.colno}"
                raise SpecError(display, place, f"invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise SpecError(display, "", "invalid JSON: nested too deeply") from None
    return _parse_yaml(text, display)


def _parse_yaml(text: str, display: str) -> Any:
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "cannot parse"
        if exc.problem and exc.context and exc.context_mark:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise SpecError(display, place, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        place = f"line {line}, column {column}"
        raise SpecError(display, place, f"invalid YAML: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise SpecError(display, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(display, "", "invalid YAML: nested too deeply") from None


class RefResolver:
    """Follows `$ref`s from one root document, reading every other file at most once."""

    def __init__(self, root: Path, root_doc: Any) -> None:
        self.root = root.resolve()
        self._docs: dict[Path, Any] = {self.root: root_doc}
        self._failed: dict[Path, SpecError] = {}
        # Containers whose every reachable `$ref` already resolved: a big spec's shared
        # components are walked once, not once per operation.
        self._clean: set[int] = set()

    def resolve(self, node: Any, base: Path) -> tuple[Any, Path]:
        """Follow a chain of `$ref`s from `node` (found in file `base`) to what it stands for.

        Returns the value and the file it lives in, which later relative refs are read from.
        """
        written: list[str] = []
        seen: set[tuple[Path, str]] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref: str = node["$ref"]
            target = self._split(ref, base)
            written.append(ref)
            if target in seen:
                raise RefError(f"$ref cycle: {' -> '.join(written)}")
            seen.add(target)
            base = target[0]
            node = _follow_pointer(self._load(ref, base), target[1], ref)
        return node, base

    def check(self, node: Any, base: Path, label: str = "") -> None:
        """Raise RefError unless every `$ref` reachable from `node` resolves.

        Recursive schemas (a tree whose children are trees) are legal, so a container
        seen before is skipped, not reported; only a ref chain leading back to itself
        is a cycle. The walk uses its own stack, so depth never means RecursionError.
        `node` must be part of a parsed document: checked containers are remembered by id.
        """
        seen: set[int] = set()
        stack: list[tuple[Any, Path, _Trail]] = [(node, base, (None, label) if label else None)]
        while stack:
            value, file, trail = stack.pop()
            if not isinstance(value, dict | list) or id(value) in seen or id(value) in self._clean:
                continue
            seen.add(id(value))
            if isinstance(value, list):
                stack.extend((item, file, (trail, f"[{i}]")) for i, item in enumerate(value))
                continue
            ref = value.get("$ref")
            if isinstance(ref, str):
                try:
                    target, target_file = self.resolve(value, file)
                except RefError as exc:
                    where = _format_trail(trail)
                    raise RefError(f"{exc} (at {where})" if where else str(exc)) from None
                stack.append((target, target_file, (trail, f" -> {ref}: ")))
            for key, child in value.items():
                # Examples and extensions are free-form data, where `$ref` is just a word.
                if key == "$ref" or key == "example" or str(key).startswith("x-"):
                    continue
                stack.append((child, file, (trail, f".{key}")))
        self._clean |= seen

    def _split(self, ref: str, base: Path) -> tuple[Path, str]:
        file_part, _, fragment = ref.partition("#")
        if _SCHEME.match(file_part):
            parts = urlsplit(file_part)
            if parts.scheme != "file":
                raise RefError(
                    f"$ref {ref!r}: remote references are not fetched; "
                    "only local and relative-file references are followed"
                )
            return Path(unquote(parts.path)).resolve(), fragment
        if not file_part:
            return base, fragment
        return (base.parent / unquote(file_part)).resolve(), fragment

    def _load(self, ref: str, file: Path) -> Any:
        if file in self._docs:
            return self._docs[file]
        if file not in self._failed:
            try:
                self._docs[file] = read_spec(file, ref.partition("#")[0])
                return self._docs[file]
            except SpecError as exc:
                self._failed[file] = exc
        raise RefError(f"$ref {ref!r}: {self._failed[file].detail}")


def _follow_pointer(doc: Any, pointer: str, ref: str) -> Any:
    if pointer and not pointer.startswith("/"):
        raise RefError(
            f"$ref {ref!r}: '#{pointer}' is not a JSON pointer (anchors are not supported)"
        )
    try:
        return _walk_tokens(doc, pointer)
    except LookupError as exc:
        # Pointers in a URI fragment may be percent-encoded (`~1items~1%7Bid%7D`); the
        # literal reading goes first because a path key may itself contain `%`.
        if "%" in pointer:
            try:
                return _walk_tokens(doc, unquote(pointer))
            except LookupError:
                pass
        raise RefError(f"$ref {ref!r} does not resolve: {exc.args[0]}") from None


def _walk_tokens(doc: Any, pointer: str) -> Any:
    node = doc
    walked = ""
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token in node:
                node = node[token]
            # YAML reads an unquoted `200:` response code as a number.
            elif token.isdigit() and int(token) in node:
                node = node[int(token)]
            else:
                raise LookupError(f"no {token!r} in {walked or 'the document root'}")
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise LookupError(f"{walked or 'the document root'} has no item {token!r}")
        walked += f"/{raw}"
    return node


def _format_trail(trail: _Trail) -> str:
    pieces: list[str] = []
    while trail is not None:
        trail, piece = trail
        pieces.append(piece)
    text = "".join(reversed(pieces)).replace(": .", ": ")
    return text.removeprefix(".").removesuffix(": ")
