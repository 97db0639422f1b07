"""Generated math, instruction pairs and multiple-choice items."""

from __future__ import annotations

import random

import pytest

from mixopt.demo import tasks
from mixopt.demo.tasks import MathProblem


def test_math_answers_are_verified():
    rng = random.Random(0)
    problems = [tasks.make_math_problem(rng) for _ in range(2000)]
    kinds = {p.question.split()[0] + ("x" if "x" in p.question else "") for p in problems}
    assert kinds == {"What", "Solvex"}
    for p in problems:
        tasks.verify_math(p)  # raises on a wrong answer
    with pytest.raises(ValueError, match="wrong answer"):
        tasks.verify_math(MathProblem("What is 3 * 4 + 5?", "", 27))
    with pytest.raises(ValueError, match="wrong answer"):
        tasks.verify_math(MathProblem("Solve for x: 3x - 5 = 10.", "", 4))
    tasks.verify_math(MathProblem("Solve for x: 3x - 5 = 10.", "", 5))


def test_math_items_hold_one_correct_choice():
    rng = random.Random(1)
    for _ in range(200):
        problem = tasks.make_math_problem(rng)
        item = tasks.math_item(problem, rng)
        assert len(set(item["choices"])) == tasks.N_CHOICES
        assert item["choices"][item["answer"]] == f" {problem.answer}"
        assert item["context"].endswith("Answer:")


def test_docstring_and_topic_pairs():
    source = 'def visible(a):\n    """Return the thing that was asked for."""\n\ndef _hidden():\n    """Not public at all here."""\n'
    pairs = tasks.docstring_pairs("pkg.mod", source)
    assert ("does", "What does the function pkg.mod.visible do?", "Return the thing that was asked for.") in pairs
    assert ("where", "Which Python module defines the function visible?", "pkg.mod") in pairs
    assert not any("_hidden" in q for _, q, _ in pairs)
    assert tasks.docstring_pairs("broken", "def (:") == []
    topic = {"assert": "The assert statement\n********************\n\nAssert statements are a convenient way. More."}
    assert tasks.topic_pairs(topic) == [
        ("topic", "What does the Python documentation topic 'assert' describe?", "Assert statements are a convenient way.")
    ]


def test_instruction_items_draw_wrong_answers_from_the_same_kind():
    pairs = [("where", f"Which module defines f{i}?", f"mod{i}") for i in range(6)]
    pairs += [("does", f"What does g{i} do?", f"Does thing number {i}.") for i in range(6)]
    items = tasks.instruction_items(pairs, random.Random(0))
    assert len(items) == 12
    for item, (kind, question, answer) in zip(items, pairs, strict=True):
        assert item["context"] == f"Question: {question}\nAnswer:"
        assert item["choices"][item["answer"]] == f" {answer}"
        assert all(c.startswith(" mod") == (kind == "where") for c in item["choices"])


def test_code_items_keep_indentation_and_context():
    rng = random.Random(0)
    files = ["\n".join(f"    value_{f}_{i} = compute_something({i}, {f})" for i in range(40)) for f in range(3)]
    items = tasks.code_items(files, rng, n=10)
    assert len(items) == 10
    for item in items:
        correct = item["choices"][item["answer"]]
        assert {len(c) - len(c.lstrip()) for c in item["choices"]} == {4}
        assert len(item["context"].splitlines()) == 8
        assert correct not in item["context"]


def test_cloze_items_blank_a_word_of_the_same_shape():
    towns = ["Brighton", "Oxford", "Leeds", "Bristol", "Durham", "Exeter"]
    sentences = [f"In the year {1900 + i} the town of {towns[i % 6]} built a bridge near {towns[(i + 1) % 6]}."
                 for i in range(40)]
    items = tasks.cloze_items(sentences, random.Random(0), n=20)
    assert len(items) == 20
    for item in items:
        correct = item["choices"][item["answer"]].strip()
        assert all(c.strip().isdigit() == correct.isdigit() for c in item["choices"])
        assert any(s.startswith(item["context"] + " " + correct) for s in sentences)
