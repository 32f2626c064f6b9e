"""The text formats shared by the corpus, the discovery loops and the SDFT teacher.

One place defines them so that what pretraining teaches is exactly what TTT reuse and the SDFT
teacher later show the model. Every format is a single line (a corpus line is one document,
followed by EOS); the model's answer follows `A:` and ends at EOS or at the separator `||`.

    plain    Q: <task prompt> A: <answer>
    scored   Q: <task prompt> A: <attempt> || score 0.62            (corpus only: graded attempts)
    improve  Q: <task prompt> || previous attempt (score 0.62): <attempt> || improve on it. A: <answer>
    demo     Q: <task prompt> || example response: <demo> || now answer with a response of your own. A: <answer>
    drill    Q: <task prompt> || <question about the instance> A: <answer>   (corpus only: reading the instance)
"""
from __future__ import annotations

SEP = "||"
ANSWER_TAG = "A:"
# Where a sampled answer ends besides EOS; also used as sampling stop strings.
STOP_STRINGS = (SEP, "\n")


def plain_prompt(task_prompt: str) -> str:
    """The prompt a model sees for a task with no extra context (best-of-N, student)."""
    return f"Q: {task_prompt} {ANSWER_TAG}"


def improve_prompt(task_prompt: str, attempt: str, score: float) -> str:
    """A previous attempt and its score, to be improved on (TTT state reuse)."""
    return f"Q: {task_prompt} {SEP} previous attempt (score {score:.2f}): {attempt} {SEP} improve on it. {ANSWER_TAG}"


def demo_prompt(task_prompt: str, demonstration: str) -> str:
    """The task with a demonstration in context (the SDFT teacher's view)."""
    return (f"Q: {task_prompt} {SEP} example response: {demonstration} {SEP} "
            f"now answer with a response of your own. {ANSWER_TAG}")


def with_answer(prompt: str, answer: str) -> str:
    """A full corpus/demonstration line: prompt followed by its answer."""
    return f"{prompt} {answer}"


def drill_line(task_prompt: str, question: str, answer: str) -> str:
    """A corpus line asking one fact of the instance (an item's weight and value, a cell), so that
    the model learns to look things up in its prompt."""
    return f"Q: {task_prompt} {SEP} {question} {ANSWER_TAG} {answer}"


def scored_line(task_prompt: str, attempt: str, score: float) -> str:
    """A corpus line showing an imperfect attempt and the score the verifier gave it."""
    return f"{plain_prompt(task_prompt)} {attempt} {SEP} score {score:.2f}"


def extract_answer(completion: str) -> str:
    """The answer part of a sampled completion: up to the first separator or newline, stripped.

    Never raises; any string (including garbage) gives some string.
    """
    if not isinstance(completion, str):
        return ""
    end = len(completion)
    for stop in STOP_STRINGS:
        i = completion.find(stop)
        if i != -1:
            end = min(end, i)
    return completion[:end].strip()
