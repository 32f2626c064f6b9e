"""A tiny, safe arithmetic parser for + - * and parentheses over integers (never eval).

Grammar:  expr := term (('+'|'-') term)* ;  term := factor ('*' factor)* ;
          factor := INT | '(' expr ')'
Returns the value and the integer literals used, or None for anything malformed. Nesting depth
and the size of intermediate values are bounded so adversarial input stays cheap.
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*(?:(\d{1,4})|(.))")
MAX_DEPTH = 20
MAX_ABS = 10 ** 9


class _Fail(Exception):
    pass


def tokenize(text: str) -> list[str]:
    out = []
    for num, op in _TOKEN.findall(text):
        if num:
            out.append(num)
        elif op.strip():
            if op not in "+-*()":
                raise _Fail
            out.append(op)
    return out


def evaluate(text: str) -> tuple[int, list[int]] | None:
    """(value, literals used) of an arithmetic expression, or None if it is not one."""
    try:
        tokens = tokenize(text)
        if not tokens or len(tokens) > 64:
            return None
        pos, literals = 0, []

        def peek():
            return tokens[pos] if pos < len(tokens) else None

        def take():
            nonlocal pos
            pos += 1
            return tokens[pos - 1]

        def check(v: int) -> int:
            if abs(v) > MAX_ABS:
                raise _Fail
            return v

        def expr(depth: int) -> int:
            v = term(depth)
            while peek() in ("+", "-"):
                v = check(v + term(depth) if take() == "+" else v - term(depth))
            return v

        def term(depth: int) -> int:
            v = factor(depth)
            while peek() == "*":
                take()
                v = check(v * factor(depth))
            return v

        def factor(depth: int) -> int:
            t = peek()
            if t is None:
                raise _Fail
            if t == "(":
                if depth >= MAX_DEPTH:
                    raise _Fail
                take()
                v = expr(depth + 1)
                if peek() != ")":
                    raise _Fail
                take()
                return v
            if t.isdigit():
                take()
                literals.append(int(t))
                return int(t)
            raise _Fail

        value = expr(0)
        if pos != len(tokens):
            return None
        return value, literals
    except _Fail:
        return None
