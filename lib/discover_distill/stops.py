"""Stop strings found on the device (the fast engine of sampling.py): a small automaton over the
stop strings' characters, driven by per-token tables built once per (tokenizer, stop strings), so
decoding never reads every live row's text back to the host to look for them.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass
class StopTable:
    """A stop-string automaton as per-token tables: a row's state is the longest suffix of its
    decoded text that begins a stop string (state 0: no text yet, where SentencePiece still drops
    a leading space). Reading token v in state s: match[s, v] (a stop string now occurs) and
    next_state[s, v]. Exact wherever a token's text does not depend on its neighbours; tokens whose
    text can (`ambiguous`, e.g. byte pieces when a stop string has a non-ASCII character) send
    their row to the host check (decode the prefix, look for the strings) for the rest of it."""
    next_state: torch.Tensor  # [S * V] long, flattened (state * V + token)
    match: torch.Tensor       # [S * V] bool
    ambiguous: torch.Tensor   # [V] bool
    vocab_size: int
    has_ambiguous: bool       # (known on the host: no read-back per call)

    def to(self, device) -> "StopTable":
        return StopTable(self.next_state.to(device), self.match.to(device), self.ambiguous.to(device),
                         self.vocab_size, self.has_ambiguous)


def build_stop_table(stop_strings: Sequence[str], vocab_size: int, piece_text: Callable[[int], str],
                     first_text: Callable[[int], str] | None = None, ambiguous: Sequence[int] = ()) -> StopTable:
    """Tables for `stop_strings` over ids < vocab_size.

    piece_text(v): the text token v adds to a decoded sequence that already has text;
    first_text(v): its text while the sequence has none yet (default: piece_text); the text so far
    is then first_text of the first token with text, followed by piece_text of every later token.
    Matching follows Aho-Corasick: the longest suffix of (state + next character) that begins a
    stop string is the next state, and a stop string ends at that character iff it is a suffix of
    (state + character), so the state carries all a later match can need.
    """
    stops = tuple(stop_strings)
    prefixes = sorted({s[:i] for s in stops for i in range(len(s))})
    index = {p: 1 + j for j, p in enumerate(prefixes)}  # state 0: nothing decoded yet
    chars = set("".join(stops))
    always = "" in stops  # `"" in text` holds from the first token on
    first_text = first_text or piece_text

    def read(state: str, text: str) -> tuple[bool, str]:
        if not chars.intersection(text):
            return False, ("" if text else state)
        for ch in text:
            state += ch
            if any(state.endswith(s) for s in stops):
                return True, ""
            while state not in index:
                state = state[1:]
        return False, state

    nxt = [[0] * vocab_size for _ in range(1 + len(prefixes))]
    match = [[always] * vocab_size for _ in range(1 + len(prefixes))]
    for v in range(vocab_size):
        text = first_text(v)
        if text:  # else the row stays in state 0
            hit, state = read("", text)
            match[0][v] |= hit
            nxt[0][v] = index.get(state, 0)
        text = piece_text(v)
        for p, j in index.items():
            hit, state = read(p, text)
            match[j][v] |= hit
            nxt[j][v] = index[state]
    amb = torch.zeros(vocab_size, dtype=torch.bool)
    amb[[v for v in ambiguous if 0 <= v < vocab_size]] = True
    return StopTable(torch.tensor(nxt).flatten(), torch.tensor(match).flatten(), amb, vocab_size, bool(amb.any()))


def _sentencepiece_table(sp, decode: Callable[[list[int]], str], stop_strings: Sequence[str],
                         vocab_size: int) -> StopTable | None:
    """The table for a SentencePiece model whose ids `decode` turns into text.

    Piece texts: "▁" is a space, control pieces are empty, byte pieces are their byte's character
    when ASCII (UTF-8 never uses an ASCII byte inside a longer character) and else some non-ASCII
    character(s), hence ambiguous when a stop string has a non-ASCII character. The first text is
    decode([v]) itself (it drops the leading space). Every piece text is checked against decode
    after a plain anchor piece; a mismatch makes that id ambiguous rather than wrong."""
    n = sp.get_piece_size()
    non_ascii = any(ord(c) > 127 for s in stop_strings for c in s)
    stop_chars = set("".join(stop_strings))

    def plain(v):  # an anchor: a normal piece of ASCII letters/digits only (no space, no stop character)
        piece = sp.id_to_piece(v)
        return (not (sp.is_control(v) or sp.is_unknown(v) or sp.is_byte(v)) and piece.isascii() and piece.isalnum()
                and not stop_chars & set(piece))

    anchor = next((v for v in range(n) if plain(v)), None)
    if anchor is None:
        return None
    anchor_text = decode([anchor])
    pieces, firsts, ambiguous = [], [], []
    for v in range(vocab_size):
        if v >= n:
            text = ""  # no piece: the tokenizer's decode drops it (checked below)
        elif sp.is_control(v):
            text = ""
        elif sp.is_byte(v):
            b = int(sp.id_to_piece(v)[3:-1], 16)
            text = chr(b) if b < 0x80 else "\ufffd"
            if b >= 0x80 and non_ascii:
                ambiguous.append(v)
        elif sp.is_unknown(v):
            text = decode([v])
        else:
            text = sp.id_to_piece(v).replace("▁", " ")
        try:
            first, after = decode([v]), decode([anchor, v])
        except Exception:  # e.g. a decode that rejects spare ids: the host path raises as the reference does
            first, after = "", None
        if after != anchor_text + text:
            ambiguous.append(v)
        pieces.append(text)
        firsts.append(first)
    return build_stop_table(stop_strings, vocab_size, pieces.__getitem__, firsts.__getitem__, ambiguous)


_TABLES: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def stop_table_for(stop_strings: Sequence[str], vocab_size: int, decode: Callable[[list[int]], str] | None,
                   piece_text: Callable[[int], str] | None = None, device=None) -> StopTable | None:
    """The cached table for (tokenizer, stop strings, vocab size, device), or None when the stop
    check must stay on the host. Tables come from `piece_text` when given (the caller vouches that
    decode(ids) == "".join(map(piece_text, ids))), else from the SentencePiece model behind
    `decode` (a discover_distill Tokenizer's bound decode, or a SentencePieceProcessor's). Any
    other decode: None."""
    if not stop_strings or decode is None:
        return None
    owner = decode.__self__ if piece_text is None and hasattr(decode, "__self__") else piece_text
    sp = getattr(owner, "sp", owner)
    if piece_text is None and not (hasattr(sp, "is_byte") and hasattr(sp, "id_to_piece")):
        return None
    key = (tuple(stop_strings), vocab_size, str(device))
    try:
        cached = _TABLES.setdefault(owner, {})
    except TypeError:  # not weak-referenceable: build every time
        cached = {}
    if key not in cached:
        cpu_key = (key[0], key[1], "cpu")
        if cpu_key not in cached:
            cached[cpu_key] = (build_stop_table(stop_strings, vocab_size, piece_text) if piece_text is not None
                               else _sentencepiece_table(sp, decode, stop_strings, vocab_size))
        table = cached[cpu_key]
        cached[key] = None if table is None else table.to(device)
    return cached[key]


class StopChecker:
    """Which live rows' completions now contain a stop string, one sampled token per step.

    On the device through a StopTable; rows that emitted an ambiguous token (or all rows, when
    there is no table) are checked on the host as the reference does: decode the row's tokens so
    far and look for the strings. Exact either way (tests compare with decoding every prefix)."""

    def __init__(self, stop_strings: Sequence[str], decode: Callable[[list[int]], str] | None,
                 table: StopTable | None, n_rows: int, device):
        self.stops, self.decode, self.table = tuple(stop_strings), decode, table
        self.active = bool(self.stops) and decode is not None
        self.state = torch.zeros(n_rows, dtype=torch.long, device=device)
        self.host_rows = torch.full((n_rows,), table is None, dtype=torch.bool, device=device)
        self.host_check = self.active and (table is None or table.has_ambiguous)

    def update(self, tok: torch.Tensor, live: torch.Tensor, tokens_so_far: torch.Tensor) -> torch.Tensor:
        """Rows among `live` whose decoded tokens_so_far [N, t] (the last column: tok) contain a stop."""
        hit = torch.zeros_like(live)
        if not self.active:
            return hit
        if self.table is not None:
            tok = tok.clamp(0, self.table.vocab_size - 1)  # (ended rows carry pad, whatever its id)
            key = self.state * self.table.vocab_size + tok
            hit = self.table.match[key] & live
            self.state = torch.where(live, self.table.next_state[key], self.state)
            if self.host_check:
                self.host_rows = self.host_rows | (live & self.table.ambiguous[tok])
            hit = hit & ~self.host_rows
        if self.host_check:
            for i in (self.host_rows & live).nonzero().flatten().tolist():
                text = self.decode(tokens_so_far[i].tolist())
                if any(s in text for s in self.stops):
                    hit[i] = True
        return hit
