"""PUCT state archive for TTT state reuse (DESIGN §4).

The archive holds (solution, reward) states, seeded with the empty state (the plain prompt).
A state's selection score is

    score(s) = Q(s) + c * scale * P(s) * sqrt(1 + T) / (1 + n(s))

with c = 1, scale = the reward range in the archive (1 when every reward is equal), P a linear
rank prior over rewards (best state gets the largest prior), T the total number of selections
so far, n(s) the selections of s, and Q(s) = m(s), the best reward among s's children, once s
has been expanded (its own reward before that). Selected states are shown to the model as a
previous attempt to improve on; their rollouts become children (lineage = parent id).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class State:
    id: int
    solution: str | None  # None = the empty state: the plain prompt with no previous attempt
    reward: float
    parent: int | None
    visits: int = 0
    best_child: float | None = None  # m(s): best reward among children, None until expanded


class PuctArchive:
    def __init__(self, cap: int = 64, c: float = 1.0, empty_reward: float = 0.0):
        if cap < 2:
            raise ValueError("archive cap must be >= 2 (the empty state plus at least one solution)")
        self.cap, self.c = cap, c
        self.states: dict[int, State] = {0: State(0, None, empty_reward, None)}
        self._by_solution: dict[str, int] = {}
        self._next_id = 1
        self.total_visits = 0

    def __len__(self) -> int:
        return len(self.states)

    def priors(self) -> dict[int, float]:
        """Linear rank prior: rank k (0 = highest reward) gets weight M - k, normalised."""
        ranked = sorted(self.states.values(), key=lambda s: (-s.reward, s.id))
        m = len(ranked)
        norm = m * (m + 1) / 2
        return {s.id: (m - k) / norm for k, s in enumerate(ranked)}

    def scores(self) -> dict[int, float]:
        rewards = [s.reward for s in self.states.values()]
        scale = (max(rewards) - min(rewards)) or 1.0
        priors = self.priors()
        explore = self.c * scale * math.sqrt(1 + self.total_visits)
        out = {}
        for s in self.states.values():
            q = s.best_child if s.best_child is not None else s.reward
            out[s.id] = q + explore * priors[s.id] / (1 + s.visits)
        return out

    def select(self, k: int) -> list[State]:
        """The k highest-scoring distinct states (fewer if the archive is smaller); counts visits."""
        scores = self.scores()
        chosen = sorted(self.states.values(), key=lambda s: (-scores[s.id], s.id))[:k]
        for s in chosen:
            s.visits += 1
            self.total_visits += 1
        return chosen

    def insert(self, parent_id: int, solution: str, reward: float) -> State | None:
        """Add a rollout as a child of the state it started from; updates the parent's m(s).

        A solution already in the archive is not added twice (returns None). When the archive
        exceeds `cap`, the lowest-reward state other than the empty state is dropped.
        """
        parent = self.states.get(parent_id)
        if parent is not None:
            parent.best_child = reward if parent.best_child is None else max(parent.best_child, reward)
        if solution in self._by_solution:
            return None
        state = State(self._next_id, solution, float(reward), parent_id)
        self._next_id += 1
        self.states[state.id] = state
        self._by_solution[solution] = state.id
        while len(self.states) > self.cap:
            worst = min((s for s in self.states.values() if s.id != 0), key=lambda s: (s.reward, -s.id))
            del self.states[worst.id]
            del self._by_solution[worst.solution]
        return self.states.get(state.id)

    def best(self) -> State:
        return max(self.states.values(), key=lambda s: (s.reward, -s.id))

    def lineage(self, state_id: int) -> list[int]:
        """Ids from the state back to its oldest ancestor still known (evicted ancestors end it)."""
        chain = []
        sid: int | None = state_id
        while sid is not None and sid in self.states:
            chain.append(sid)
            sid = self.states[sid].parent
        return chain

    def state_dict(self) -> dict:
        return {"cap": self.cap, "c": self.c, "next_id": self._next_id, "total_visits": self.total_visits,
                "states": [asdict(s) for s in self.states.values()]}

    @classmethod
    def from_state_dict(cls, d: dict) -> "PuctArchive":
        a = cls(cap=d["cap"], c=d["c"])
        a.states = {s["id"]: State(**s) for s in d["states"]}
        a._by_solution = {s.solution: s.id for s in a.states.values() if s.solution is not None}
        a._next_id, a.total_visits = d["next_id"], d["total_visits"]
        return a
