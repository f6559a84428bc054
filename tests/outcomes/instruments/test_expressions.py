"""The expression language of show-if conditions and calculated items (pure, no database)."""

from __future__ import annotations

import ast
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from outcomes.instruments.answers import MissingCode
from outcomes.instruments.expression_eval import evaluate
from outcomes.instruments.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    Binary,
    Call,
    ExpressionError,
    Number,
    Ref,
    String,
    Unary,
    depth,
    parse,
    references,
    to_text,
)


def value(text: str, **answers):
    return evaluate(parse(text), answers)


# --- Parsing -----------------------------------------------------------------------------------


def test_redcap_branching_logic_parses_with_and_binding_tighter_than_or():
    tree = parse("[item] = '1' and [other] > 3 or [x(2)] = 1")
    assert tree == Binary(
        "or",
        Binary(
            "and",
            Binary("=", Ref("item"), String("1")),
            Binary(">", Ref("other"), Number(Decimal(3))),
        ),
        Binary("=", Ref("x", "2"), Number(Decimal(1))),
    )


def test_multiplication_binds_tighter_than_addition_and_unary_minus_tightest():
    assert value("1 + 2 * 3") == 7
    assert value("(1 + 2) * 3") == 9
    assert value("-2 * 3 + 10") == 4
    assert value("10 - 4 - 3") == 3


def test_all_spellings_of_equality_and_inequality_mean_the_same():
    assert parse("[a] = 1") == parse("[a] == 1")
    assert parse("[a] != 1") == parse("[a] <> 1")


def test_keywords_and_function_names_are_read_in_any_case():
    assert parse("NOT [a] = 1 AND [b] = 2 Or [c] = 3") == parse(
        "not [a] = 1 and [b] = 2 or [c] = 3"
    )
    assert parse("SUM([a], 1)") == Call("sum", (Ref("a"), Number(Decimal(1))))


@pytest.mark.parametrize(
    ("text", "key", "position"),
    [
        ("[a] = ", "expression.unexpected_end", 6),
        ("[a] $ 1", "expression.unexpected_character", 4),
        ("(1 + 2", "expression.expected", 6),
        ("foo(1)", "expression.unknown_function", 0),
        ("if(1, 2)", "expression.wrong_arguments", 0),
        ("1 < [x] < 5", "expression.chained_comparison", 8),
        ("[a] = 1 1", "expression.unexpected", 8),
        ("__import__('os')", "expression.unknown_function", 0),
        ("[a].b", "expression.unexpected_character", 3),
        ("", "expression.unexpected_end", 0),
    ],
)
def test_a_parse_error_names_the_problem_and_its_position(text, key, position):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert (caught.value.key, caught.value.position) == (key, position)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 900 + "1" + ")" * 900,
        "-" * 1500 + "1",
        "not " * 450 + "1",
        "+".join(["1"] * 900),
        "sum(" * 300 + "1" + ")" * 300,
    ],
)
def test_hostile_nesting_is_refused_without_exhausting_the_stack(text):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert caught.value.key == "expression.too_deep"


def test_an_expression_longer_than_the_limit_is_refused():
    with pytest.raises(ExpressionError) as caught:
        parse("1" + " " * MAX_LENGTH)
    assert caught.value.key == "expression.too_long"


def test_a_long_but_shallow_expression_within_the_limits_parses():
    text = "sum(" + ", ".join(f"[item_{n}]" for n in range(1, 24)) + ")"
    assert references(parse(text)) == tuple(f"item_{n}" for n in range(1, 24))


def test_references_lists_each_item_read_once_in_order():
    tree = parse("if([b] > 1, [a] + [b], [c(3)] * [a])")
    assert references(tree) == ("b", "a", "c")


# --- Evaluation --------------------------------------------------------------------------------


def test_arithmetic_with_a_missing_item_is_missing():
    assert value("[a] + 1") is None
    assert value("[a] + 1", a=None) is None
    assert value("[a] + 1", a=MissingCode("refused")) is None
    assert value("[a] + 1", a=2) == 3


def test_arithmetic_is_decimal_so_tenths_add_up_exactly():
    assert value("0.1 + 0.2 = 0.3") is True


def test_division_by_zero_is_missing_not_an_error():
    assert value("[a] / [b]", a=1, b=0) is None


def test_a_comparison_with_a_missing_item_is_false_either_way():
    assert value("[a] = 1") is False
    assert value("[a] != 1") is False
    assert value("[a] < 1") is False
    assert value("not ([a] = 1)") is True


def test_comparing_with_the_empty_string_tests_for_an_answer_as_in_redcap():
    assert value("[a] = ''") is True
    assert value("[a] <> ''") is False
    assert value("[a] = ''", a=0) is False
    assert value("[a] <> ''", a=0) is True


def test_a_quoted_number_compares_as_a_number_as_redcap_does():
    assert value("[pain] > '3'", pain=10) is True
    assert value("[choice] = 1", choice="1") is True
    assert value("[choice] = '01'", choice="1") is True
    assert value("[name] = 'abc'", name="abc") is True


def test_a_date_item_compares_with_an_iso_date_string():
    assert value("[onset] >= '2024-05-31'", onset=dt.date(2024, 6, 1)) is True
    assert value("[onset] >= 'not a date'", onset=dt.date(2024, 6, 1)) is False


def test_a_checkbox_choice_is_1_when_checked_and_0_otherwise_even_with_nothing_checked():
    assert value("[sym(2)]", sym=("1", "2")) == 1
    assert value("[sym(3)]", sym=("1", "2")) == 0
    assert value("[sym(3)]") == 0


def test_aggregate_functions_skip_missing_values():
    answers = {"a": 1, "b": None, "c": 4}
    assert value("sum([a], [b], [c])", **answers) == 5
    assert value("mean([a], [b], [c])", **answers) == Decimal("2.5")
    assert value("count([a], [b], [c])", **answers) == 2
    assert value("min([a], [b], [c])", **answers) == 1
    assert value("max([a], [b], [c])", **answers) == 4
    assert value("sum([b])", **answers) is None
    assert value("count([b])", **answers) == 0


def test_if_chooses_by_its_condition_and_a_missing_condition_counts_as_false():
    assert value("if([a] > 2, 'high', 'low')", a=3) == "high"
    assert value("if([a] > 2, 'high', 'low')") == "low"


def test_yes_no_answers_count_as_one_and_zero():
    assert value("[a] + [b]", a=True, b=False) == 1
    assert value("[a] + [b]", a=1, b=0) == 1


# --- Properties --------------------------------------------------------------------------------

NAMES = ("a", "b", "c", "sym")
leaves = st.one_of(
    st.decimals(min_value=0, max_value=10**6, places=3).map(Number),
    st.text(alphabet="abc 01'-", max_size=5).map(String),
    st.builds(Ref, st.sampled_from(NAMES), st.sampled_from([None, None, "1", "2"])),
)


def _extend(children):
    calls = st.one_of(
        st.builds(
            lambda f, args: Call(f, tuple(args)),
            st.sampled_from([f for f in FUNCTIONS if f != "if"]),
            st.lists(children, min_size=1, max_size=3),
        ),
        st.builds(lambda a, b, c: Call("if", (a, b, c)), children, children, children),
    )
    return st.one_of(
        st.builds(Unary, st.sampled_from(["-", "not"]), children),
        st.builds(
            Binary,
            st.sampled_from(["and", "or", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/"]),
            children,
            children,
        ),
        calls,
    )


trees = st.recursive(leaves, _extend, max_leaves=12)
answer_values = st.one_of(
    st.none(),
    st.integers(-(10**9), 10**9),
    st.decimals(min_value=-(10**6), max_value=10**6, places=4),
    st.booleans(),
    st.text(max_size=5),
    st.dates(),
    st.times(),
    st.lists(st.sampled_from(["1", "2", "3"]), unique=True).map(tuple),
    st.sampled_from([MissingCode("refused"), MissingCode("not_asked")]),
)
answer_sets = st.dictionaries(st.sampled_from(NAMES), answer_values)


@settings(max_examples=300)
@given(trees)
def test_printing_a_tree_and_parsing_it_back_gives_the_same_tree(tree):
    assume(depth(tree) <= MAX_DEPTH // 3)
    assert parse(to_text(tree)) == tree


@settings(max_examples=300)
@given(trees, answer_sets)
def test_evaluation_never_raises_on_any_answers(tree, answers):
    assume(depth(tree) <= MAX_DEPTH // 3)
    result = evaluate(tree, answers)
    assert result is None or isinstance(result, Decimal | str | bool | dt.date | dt.time | tuple)


@settings(max_examples=300)
@given(st.text(alphabet="[]()ab1'\" =<>!+-*/,.sumeaninotrd", max_size=60))
def test_parsing_any_text_gives_a_tree_or_a_parse_error_and_nothing_else(text):
    try:
        tree = parse(text)
    except ExpressionError as error:
        assert 0 <= error.position <= max(len(text), MAX_LENGTH)
    else:
        evaluate(tree, {})


@given(st.lists(st.one_of(st.none(), st.integers(-1000, 1000)), min_size=1, max_size=8))
def test_sum_mean_and_count_equal_a_plain_computation_over_the_answered_values(values):
    names = [f"v{i}" for i in range(len(values))]
    answers = dict(zip(names, values, strict=True))
    refs = ", ".join(f"[{name}]" for name in names)
    answered = [v for v in values if v is not None]
    assert value(f"count({refs})", **answers) == len(answered)
    if answered:
        assert value(f"sum({refs})", **answers) == sum(answered)
        assert value(f"mean({refs})", **answers) == Decimal(sum(answered)) / len(answered)
        assert value(f"max({refs})", **answers) == max(answered)
    else:
        assert value(f"sum({refs})", **answers) is None


CORE = (
    "problems",
    "expressions",
    "expression_eval",
    "expression_checks",
    "score_rules",
    "definition_checks",
    "definition",
    "answers",
)


@pytest.mark.parametrize("module", CORE)
def test_the_pure_core_imports_only_the_standard_library_and_itself_and_never_evaluates_code(
    module,
):
    path = Path(__file__).resolve().parents[3] / "outcomes" / "instruments" / f"{module}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"eval", "exec", "compile", "__import__"}
    ours = {f"outcomes.instruments.{name}" for name in (*CORE, "scoring")} | {
        "outcomes.instruments"
    }
    stdlib = {"__future__", "collections.abc", "dataclasses", "datetime", "decimal", "re"}
    assert imported <= ours | stdlib
