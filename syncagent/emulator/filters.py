"""$filter: the part of OData's filter grammar that Graph serves on plain queries."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncagent.emulator.responses import GraphError, unsupported

Predicate = Callable[[Callable[[str], Any]], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_$][\w./$]*)|(?P<bad>\S))"
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind == "bad":
            raise _invalid_filter(text)
        tokens.append(_Token(kind, match.group(kind)))
    return tokens


def _invalid_filter(text: str) -> GraphError:
    return GraphError(400, f"Invalid filter clause: '{text}'.")


class _FilterParser:
    """Recursive descent over the filters Graph serves on a plain (non-advanced) query.

    Grammar: or-expression of and-expressions of `startswith(p,'x')`, `p eq 'x'`,
    `p in ('a','b')` or a parenthesised expression. Matching is case-insensitive, like Graph.
    Well-formed filters using anything else are refused as unsupported queries.
    """

    def __init__(self, text: str, properties: Mapping[str, str], type_name: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._position = 0
        self._properties = properties  # lower-cased name -> canonical name (string properties)
        self._type_name = type_name

    def parse(self) -> Predicate:
        if not self._tokens:
            raise _invalid_filter(self._text)
        predicate = self._or()
        if self._peek() is not None:
            raise _invalid_filter(self._text)
        return predicate

    def _peek(self) -> _Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise _invalid_filter(self._text)
        self._position += 1
        return token

    def _expect(self, text: str) -> None:
        if self._take().text != text:
            raise _invalid_filter(self._text)

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self._position += 1
            return True
        return False

    def _or(self) -> Predicate:
        return self._chain("or", self._and, any)

    def _and(self) -> Predicate:
        return self._chain("and", self._primary, all)

    def _chain(
        self, word: str, operand: Callable[[], Predicate], join: Callable[[Iterable[bool]], bool]
    ) -> Predicate:
        """`operand (word operand)*`: a lone operand as it is, several joined by `join`."""
        terms = [operand()]
        while self._keyword(word):
            terms.append(operand())
        if len(terms) == 1:
            return terms[0]
        return lambda get: join(term(get) for term in terms)

    def _primary(self) -> Predicate:
        token = self._take()
        if token.text == "(":
            inner = self._or()
            self._expect(")")
            return inner
        if token.kind != "word":
            raise _invalid_filter(self._text)
        following = self._peek()
        if following is not None and following.text == "(":
            return self._function(token.text)
        return self._comparison(token.text)

    def _function(self, name: str) -> Predicate:
        if name.lower() != "startswith":
            raise unsupported()
        self._expect("(")
        prop = self._property(self._take())
        self._expect(",")
        prefix = self._literal().casefold()
        self._expect(")")
        return lambda get: _folded(get(prop)).startswith(prefix)

    def _comparison(self, name: str) -> Predicate:
        prop = self._property(_Token("word", name))
        operator = self._take()
        if operator.kind != "word":
            raise _invalid_filter(self._text)
        if operator.text.lower() == "eq":
            value = self._literal().casefold()
            return lambda get: _folded(get(prop)) == value
        if operator.text.lower() == "in":
            self._expect("(")
            values = {self._literal().casefold()}
            while self._peek() == _Token("punct", ","):
                self._position += 1
                values.add(self._literal().casefold())
            self._expect(")")
            return lambda get: _folded(get(prop)) in values
        if operator.text.lower() in {"ne", "gt", "ge", "lt", "le", "has", "not"}:
            raise unsupported()
        raise _invalid_filter(self._text)

    def _property(self, token: _Token) -> str:
        if token.kind != "word":
            raise _invalid_filter(self._text)
        canonical = self._properties.get(token.text.lower())
        if canonical is None:
            raise unsupported(
                f"Unsupported or invalid query filter clause specified for property "
                f"'{token.text}' of resource '{self._type_name}'."
            )
        return canonical

    def _literal(self) -> str:
        token = self._take()
        if token.kind != "string":
            # Numbers, booleans, null and GUID literals are valid OData but not served here.
            raise unsupported()
        return token.text[1:-1].replace("''", "'")


def _folded(value: Any) -> str:
    return "" if value is None else str(value).casefold()


def _filterable(names: Sequence[str]) -> dict[str, str]:
    return {name.lower(): name for name in names}


# By type: the string properties a $filter may name (lower-cased name -> canonical name).
MEMBER_FILTERABLE = _filterable(["id", "displayName"])
GROUP_FILTERABLE = _filterable(["id", "displayName", "mail", "mailNickname", "description"])
USER_FILTERABLE = _filterable(
    ["id", "displayName", "userPrincipalName", "givenName", "surname", "jobTitle", "mail"]
)


def parse_filter(
    params: Mapping[str, str], properties: Mapping[str, str], type_name: str
) -> Predicate | None:
    raw = params.get("$filter")
    if raw is None:
        return None
    return _FilterParser(raw, properties, type_name).parse()
