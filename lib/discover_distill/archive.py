"""PUCT state archive for TTT state reuse (DESIGN §4), as the official TTT-Discover sampler does it:
test-time-training/discover, tinker_cookbook/recipes/ttt/sampler.py, class PUCTSampler (its
sample_states, update_states, record_failed_rollout and flush; defaults from its __init__ and
recipes/ttt/train.py).

The archive holds (solution, reward) states, seeded with the empty state (id 0: the plain prompt,
no previous attempt). Each state records its ancestors (parent first, back to the empty state),
kept even after an ancestor is evicted. A state's selection score is

    score(s) = Q(s) + c * scale * P(s) * sqrt(1 + T) / (1 + n(s))

- c = 1; scale = max(r) - min(r) over the non-initial states (the empty state excluded), floored
  at 1e-6 (so 1e-6 while the archive holds the empty state alone);
- P(s) = a linear rank prior over every state's reward, the empty state included: rank k (0 =
  highest) of M states weighs M - k, normalised (ties ranked in archive order);
- Q(s) = m(s), the best reward among the children that came back from s, once s has one; its
  own reward before that (m is never propagated to ancestors);
- n(s) counts the rollouts that came back from s or from any of its descendants: each returning
  rollout, kept or not (duplicate, failed), adds 1 to n of its start state and of every ancestor,
  and 1 to T. Selecting a state counts nothing. (The official formula divides T and n by the
  group size G, but its constructor forces G = 1.)

select(k) ranks states by (score, reward), descending, ties in archive order. For k > 1 it walks
that ranking and skips every state in the lineage (ancestors and descendants) of a state already
picked; the empty state is no exception, so it blocks, and is blocked by, every other state. It
returns fewer than k states when the ranking runs out.

New children join the archive at once (a solution already in it is not added twice); pruning
waits for flush(), which the official runs after each step's rollouts and select() runs first:
keep the best `children_per_parent` children of each parent (0 keeps all; states are regrouped
as the official does: the empty state, then each parent's kept children, best first), then, above
`cap` states, the empty state and the highest rewards (among equal rewards the later state). The
defaults are the official ones: cap 1000 (max_buffer_size), 2 children per parent (topk_children),
c = 1 (puct_c). The official run picks 64 start states per step (groups_per_batch), 8 rollouts
each (group_size).

Selected states are shown to the model as a previous attempt to improve on; their rollouts come
back through insert() (a solution) or record_failed() (no usable solution).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

SCALE_FLOOR = 1e-6


@dataclass
class State:
    id: int
    solution: str | None  # None = the empty state: the plain prompt with no previous attempt
    reward: float
    ancestors: list[int] = field(default_factory=list)  # parent first, back to the empty state
    visits: int = 0  # n(s): rollouts that came back from s or from a descendant of s
    best_child: float | None = None  # m(s): best reward among s's children, None until one came back

    @property
    def parent(self) -> int | None:
        return self.ancestors[0] if self.ancestors else None


class PuctArchive:
    def __init__(self, cap: int = 1000, c: float = 1.0, children_per_parent: int = 2, empty_reward: float = 0.0):
        if cap < 2:
            raise ValueError("archive cap must be >= 2 (the empty state plus at least one solution)")
        if children_per_parent < 0:
            raise ValueError("children_per_parent must be >= 0 (0 keeps every child)")
        self.cap, self.c, self.children_per_parent = cap, c, children_per_parent
        self.states: dict[int, State] = {0: State(0, None, empty_reward)}
        self._by_solution: dict[str, int] = {}
        self._next_id = 1
        self.total_visits = 0  # T

    def __len__(self) -> int:
        return len(self.states)

    def scale(self) -> float:
        rewards = [s.reward for s in self.states.values() if s.id != 0]
        return max(max(rewards) - min(rewards), SCALE_FLOOR) if rewards else SCALE_FLOOR

    def priors(self) -> dict[int, float]:
        """Linear rank prior: rank k (0 = highest reward) of M states gets weight M - k, normalised."""
        ranked = sorted(self.states.values(), key=lambda s: -s.reward)  # stable: ties in archive order
        m = len(ranked)
        norm = m * (m + 1) / 2
        return {s.id: (m - k) / norm for k, s in enumerate(ranked)}

    def scores(self) -> dict[int, float]:
        priors = self.priors()
        explore = self.c * self.scale() * math.sqrt(1 + self.total_visits)
        out = {}
        for s in self.states.values():
            q = s.best_child if s.best_child is not None else s.reward  # m(s) is only ever set with a visit
            out[s.id] = q + explore * priors[s.id] / (1 + s.visits)
        return out

    def select(self, k: int) -> list[State]:
        """Up to k start states by score, no two in one lineage (k > 1); prunes first (flush)."""
        self.flush()
        scores = self.scores()
        ranked = sorted(self.states.values(), key=lambda s: (scores[s.id], s.reward), reverse=True)
        if k <= 1:
            return ranked[:k]
        picked: list[State] = []
        blocked: set[int] = set()
        for s in ranked:
            if s.id in blocked:
                continue
            picked.append(s)
            blocked |= {s.id, *s.ancestors}
            blocked |= {d.id for d in self.states.values() if s.id in d.ancestors}
            if len(picked) == k:
                break
        return picked

    def _count_return(self, parent: State) -> None:
        """One rollout from `parent` came back: n rises for it and every ancestor, and T by 1."""
        for sid in (parent.id, *parent.ancestors):
            if sid in self.states:  # an evicted ancestor's count can no longer matter
                self.states[sid].visits += 1
        self.total_visits += 1

    def record_failed(self, parent_id: int) -> None:
        """A rollout from `parent_id` brought back no usable solution: it still counts as a visit."""
        self._count_return(self.states[parent_id])

    def insert(self, parent_id: int, solution: str, reward: float) -> State | None:
        """A rollout from `parent_id` came back with `solution`: updates m(parent), back-propagates
        the visit, and adds the solution as a child of the parent, unless the archive already
        holds it (returns None then). Pruning waits for flush()."""
        parent = self.states[parent_id]
        parent.best_child = reward if parent.best_child is None else max(parent.best_child, reward)
        self._count_return(parent)
        if solution in self._by_solution:
            return None
        state = State(self._next_id, solution, float(reward), [parent.id, *parent.ancestors])
        self._next_id += 1
        self.states[state.id] = state
        self._by_solution[solution] = state.id
        return state

    def flush(self) -> None:
        """End-of-step pruning: the best children_per_parent children of each parent, then the cap."""
        states = list(self.states.values())
        if self.children_per_parent > 0:
            by_parent: dict[int, list[State]] = {}
            for s in states[1:]:  # the empty state is always first
                by_parent.setdefault(s.parent, []).append(s)
            best = [sorted(kids, key=lambda s: s.reward, reverse=True)[:self.children_per_parent]
                    for kids in by_parent.values()]
            states = [self.states[0]] + [s for kids in best for s in kids]
        if len(states) > self.cap:
            # highest reward first, equal rewards latest first (the official reverses an ascending argsort)
            by_reward = sorted(range(len(states)), key=lambda i: states[i].reward)[::-1]
            keep = {0}  # the empty state stays first in the list
            for i in by_reward:
                if len(keep) >= self.cap:
                    break
                keep.add(i)
            states = [states[i] for i in sorted(keep)]
        self.states = {s.id: s for s in states}
        self._by_solution = {s.solution: s.id for s in states if s.solution is not None}

    def best(self) -> State:
        return max(self.states.values(), key=lambda s: (s.reward, -s.id))

    def lineage(self, state_id: int) -> list[int]:
        """Ids from the state back to the empty state (evicted ancestors included)."""
        return [state_id, *self.states[state_id].ancestors]

    def state_dict(self) -> dict:
        return {"cap": self.cap, "c": self.c, "children_per_parent": self.children_per_parent,
                "next_id": self._next_id, "total_visits": self.total_visits,
                "states": [asdict(s) for s in self.states.values()]}  # in archive order: it breaks ties

    @classmethod
    def from_state_dict(cls, d: dict) -> "PuctArchive":
        a = cls(cap=d["cap"], c=d["c"], children_per_parent=d["children_per_parent"])
        a.states = {s["id"]: State(**s) for s in d["states"]}
        a._by_solution = {s.solution: s.id for s in a.states.values() if s.solution is not None}
        a._next_id, a.total_visits = d["next_id"], d["total_visits"]
        return a
