"""Generated demo text and multiple-choice evaluation items (pure functions of their inputs and an RNG).

An item is ``{"context": str, "choices": [str, ...], "answer": int}``: a base model is scored by the
likelihood of each choice after the context (ranked classification, as OLMES does for base models).
Instruction data is plain text, ``"Question: ...\\nAnswer: ..."``, without special tokens.
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass

N_CHOICES = 4


# -- math with verified answers ------------------------------------------------------------------------
@dataclass(frozen=True)
class MathProblem:
    question: str
    solution: str
    answer: int


def _arith(a: int, op: str, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]


def make_math_problem(rng: random.Random) -> MathProblem:
    """One arithmetic or linear-equation problem; its answer is checked by ``verify_math``."""
    kind = rng.choice(["add", "sub", "mul", "div", "two_step", "linear"])
    if kind == "linear":
        a, x, b = rng.randint(2, 12), rng.randint(-20, 20), rng.randint(-50, 50)
        c = a * x + b
        sign, mag = ("+", b) if b >= 0 else ("-", -b)
        undo = f"Subtract {b} from both sides" if b >= 0 else f"Add {-b} to both sides"
        problem = MathProblem(
            f"Solve for x: {a}x {sign} {mag} = {c}.",
            f"{undo}: {a}x = {c - b}. Divide both sides by {a}: x = {x}.",
            x,
        )
    elif kind == "two_step":
        a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(1, 200)
        problem = MathProblem(
            f"What is {a} * {b} + {c}?", f"First {a} * {b} = {a * b}. Then {a * b} + {c} = {a * b + c}.", a * b + c
        )
    else:
        op = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind]
        a, b = (rng.randint(10, 999), rng.randint(10, 999)) if op in "+-" else (rng.randint(2, 99), rng.randint(2, 20))
        if op == "/":
            a = a * b
        problem = MathProblem(f"What is {a} {op} {b}?", f"{a} {op} {b} = {_arith(a, op, b)}.", _arith(a, op, b))
    verify_math(problem)
    return problem


def verify_math(problem: MathProblem) -> None:
    """Recompute the answer from the question's text; raises ``ValueError`` when it disagrees."""
    linear = re.fullmatch(r"Solve for x: (\d+)x ([+-]) (\d+) = (-?\d+)\.", problem.question)
    if linear:
        a, sign, b, c = linear.groups()
        offset = int(b) if sign == "+" else -int(b)
        ok = int(a) * problem.answer + offset == int(c)
    else:
        arithmetic = re.fullmatch(r"What is (.+)\?", problem.question)
        if arithmetic is None:
            raise ValueError(f"not a math problem: {problem.question!r}")
        expression = arithmetic.group(1).replace("/", "//")
        ok = _evaluate(ast.parse(expression, mode="eval").body) == problem.answer
    if not ok:
        raise ValueError(f"wrong answer {problem.answer} to {problem.question!r}")


def _evaluate(node: ast.AST) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp):
        ops = {ast.Add: int.__add__, ast.Sub: int.__sub__, ast.Mult: int.__mul__, ast.FloorDiv: int.__floordiv__}
        return ops[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError(f"unsupported expression {ast.dump(node)}")


def math_document(problems: list[MathProblem], rng: random.Random) -> str:
    """Problems as text; about half show a worked solution, all end with ``Answer: <n>``."""
    parts = []
    for p in problems:
        solution = f"\nSolution: {p.solution}" if rng.random() < 0.5 else ""
        parts.append(f"Problem: {p.question}{solution}\nAnswer: {p.answer}")
    return "\n\n".join(parts)


def math_item(problem: MathProblem, rng: random.Random) -> dict:
    wrong: set[int] = set()
    while len(wrong) < N_CHOICES - 1:
        candidate = problem.answer + rng.choice([-100, -11, -10, -9, -2, -1, 1, 2, 9, 10, 11, 100])
        wrong.add(candidate)
    return _item(f"Problem: {problem.question}\nAnswer:", f" {problem.answer}", [f" {w}" for w in wrong], rng)


# -- instruction pairs -------------------------------------------------------------------------------
def docstring_pairs(module: str, source: str) -> list[tuple[str, str, str]]:
    """``(kind, question, answer)`` pairs about a module's public, documented top-level functions."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    pairs = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        summary = doc.strip().splitlines()[0].strip() if doc else ""
        if 15 <= len(summary) <= 160:
            pairs.append(("does", f"What does the function {module}.{node.name} do?", summary))
        pairs.append(("where", f"Which Python module defines the function {node.name}?", module))
    return pairs


def topic_pairs(topics: dict[str, str]) -> list[tuple[str, str, str]]:
    """Pairs from the Python documentation topics: the first sentence of each topic."""
    pairs = []
    for name, text in topics.items():
        body = " ".join(line.strip() for line in text.strip().splitlines()[2:] if line.strip())
        sentence = re.split(r"(?<=\.)\s", body, maxsplit=1)[0]
        if 20 <= len(sentence) <= 240:
            pairs.append(("topic", f"What does the Python documentation topic '{name}' describe?", sentence))
    return pairs


def instruction_text(question: str, answer: str) -> str:
    return f"Question: {question}\nAnswer: {answer}"


def instruction_items(pairs: list[tuple[str, str, str]], rng: random.Random) -> list[dict]:
    """One item per pair; wrong choices are answers to other questions of the same kind."""
    by_kind: dict[str, list[str]] = {}
    for kind, _, answer in pairs:
        by_kind.setdefault(kind, []).append(answer)
    items = []
    for kind, question, answer in pairs:
        others = sorted({a for a in by_kind[kind] if a != answer})
        if len(others) >= N_CHOICES - 1:
            wrong = rng.sample(others, N_CHOICES - 1)
            items.append(_item(f"Question: {question}\nAnswer:", f" {answer}", [f" {w}" for w in wrong], rng))
    return items


# -- code completion and cloze QA ------------------------------------------------------------------
def code_items(files: list[str], rng: random.Random, n: int, context_lines: int = 8) -> list[dict]:
    """Next-line completion: the context is a file's preceding lines; wrong choices are lines from other
    places with the same indentation, so whitespace gives nothing away."""
    candidates = []
    for f, text in enumerate(files):
        lines = text.splitlines()
        for i in range(context_lines, len(lines)):
            stripped = lines[i].strip()
            if 20 <= len(stripped) <= 80 and not stripped.startswith(("#", '"', "'")):
                candidates.append((f, i, lines))
    by_indent: dict[int, list[str]] = {}
    for _, i, lines in candidates:
        line = lines[i]
        by_indent.setdefault(len(line) - len(line.lstrip()), []).append(line)
    items = []
    for _, i, lines in rng.sample(candidates, min(len(candidates), 4 * n)):
        line = lines[i]
        pool = by_indent[len(line) - len(line.lstrip())]
        wrong = {rng.choice(pool) for _ in range(8)} - {line}
        if len(wrong) >= N_CHOICES - 1:
            context = "\n".join(lines[i - context_lines : i]) + "\n"
            items.append(_item(context, line, rng.sample(sorted(wrong), N_CHOICES - 1), rng))
        if len(items) == n:
            break
    return items


def cloze_items(sentences: list[str], rng: random.Random, n: int) -> list[dict]:
    """Fill in a capitalized word or a number of a sentence; wrong choices are words of the same shape
    (capitalized word or number) from other sentences."""
    pattern = re.compile(r"(?<=\s)([A-Z][a-z]{3,}|\d{2,4})\b")
    blanks = [(s, m) for s in sentences for m in list(pattern.finditer(s))[:3]]
    pools = {True: sorted({m.group() for _, m in blanks if m.group().isdigit()}),
             False: sorted({m.group() for _, m in blanks if not m.group().isdigit()})}
    items = []
    for sentence, match in rng.sample(blanks, min(len(blanks), 2 * n)):
        word = match.group()
        pool = pools[word.isdigit()]
        wrong = sorted({w for w in rng.sample(pool, min(8, len(pool))) if w != word})
        if len(wrong) >= N_CHOICES - 1 and match.start() >= 20:
            wrong = [" " + w for w in rng.sample(wrong, N_CHOICES - 1)]
            items.append(_item(sentence[: match.start() - 1], " " + word, wrong, rng))
        if len(items) == n:
            break
    return items


def _item(context: str, correct: str, wrong: list[str], rng: random.Random) -> dict:
    choices = [correct, *wrong]
    rng.shuffle(choices)
    return {"context": context, "choices": choices, "answer": choices.index(correct)}
