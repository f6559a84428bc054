"""The CONSORT counting rules and the SVG, on small hand-built data."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import io
import xml.etree.ElementTree as ET
from collections import Counter

import pandas as pd
import pypdf
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.results import consort

TODAY = dt.date(2026, 6, 1)
PAST = dt.date(2026, 1, 1)
FUTURE = dt.date(2026, 12, 1)


def build(**overrides):
    participants = pd.DataFrame(
        [
            (1, "rest", "active"),
            (2, "rest", "deceased"),
            (3, "rest", "active"),
            (4, "exercise", "lost"),
            (5, "exercise", "active"),
            (6, "exercise", "withdrawn"),
            (7, "exercise", "active"),
        ],
        columns=["participant_id", "arm", "status"],
    )
    visits = pd.DataFrame(
        [
            (1, "w10", PAST, "completed"),
            (2, "w10", PAST, "open"),
            (3, "w10", PAST, "missed"),
            (4, "w10", PAST, "completed"),  # completed, but lost later: has a score
            (5, "w10", PAST, "completed"),
            (6, "w10", PAST, "open"),
            (7, "w10", FUTURE, "open"),
            (1, "y1", FUTURE, "open"),
            (5, "y1", PAST, "completed"),
        ],
        columns=["participant_id", "visit", "window_end", "outcome"],
    )
    primary = pd.DataFrame(
        [
            (1, "w10", 4.0, ""),
            (4, "w10", 6.0, ""),
            (5, "w10", None, "refused"),
            (5, "y1", 3.0, ""),
        ],
        columns=["participant_id", "visit", "score", "not_done"],
    )
    args = dict(
        screening={"ineligible": 5, "declined": 2, "eligible": 1, "enrolled": 8},
        enrolled_not_randomized={"withdrawn": 1},
        participants=participants,
        visits=visits,
        primary=primary,
        visit_labels=[("w10", "10 weeks"), ("y1", "1 year")],
        arm_labels=[("rest", "Arm A"), ("exercise", "Arm B")],
        today=TODAY,
    )
    args.update(overrides)
    return consort.count(**args)


def test_the_counts_follow_the_rules():
    result = build()
    assert result.assessed == 16
    assert result.excluded == {
        "Not meeting the criteria": 5,
        "Declined to participate": 2,
        "Other reasons": 2,
    }
    assert result.randomized == 7
    rest, exercise = result.arms
    assert (rest.label, rest.allocated, exercise.allocated) == ("Arm A", 3, 4)
    w10 = rest.visits[0]
    assert (w10.analysed, w10.not_analysed, w10.not_yet_due) == (
        1, {"Died": 1, "Missed the visit": 1}, 0,
    )  # fmt: skip
    w10 = exercise.visits[0]
    assert (w10.analysed, w10.not_analysed, w10.not_yet_due) == (
        1, {"Withdrew": 1, "Outcome not done": 1}, 1,
    )  # fmt: skip
    y1_rest, y1_exercise = rest.visits[1], exercise.visits[1]
    assert (y1_rest.analysed, y1_rest.not_yet_due, y1_rest.not_analysed) == (
        0, 1, {"Died": 1, "Not recorded": 1},
    )  # fmt: skip
    assert y1_exercise.analysed == 1


def reference_reason(pid, status, visit, entries, today):
    """The counting rules read one participant at a time, as the docstring states them."""
    scores = [e for e in entries if e[2] is not None and e[2] == e[2]]
    if scores:
        return consort.ANALYSED
    closed = visit is not None and visit[2] < today
    if visit is not None and not closed and visit[3] == "open":
        return consort.NOT_YET_DUE
    if status in consort.STATUS_REASON:
        return consort.STATUS_REASON[status]
    if visit is not None and visit[3] == "missed":
        return "Missed the visit"
    if any(e[3] for e in entries):
        return "Outcome not done"
    return "Not recorded"


@settings(max_examples=60, deadline=None)
@given(
    people=st.lists(
        st.tuples(
            st.sampled_from(["rest", "exercise"]),
            st.sampled_from(["active", "deceased", "withdrawn", "lost", "completed"]),
            st.one_of(st.none(), st.tuples(st.sampled_from([PAST, TODAY, FUTURE]),
                                           st.sampled_from(["open", "completed", "missed"]))),
            st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 10)),
                               st.sampled_from(["", "refused", "unable"])), max_size=2),
        ),
        max_size=30,
    )
)  # fmt: skip
def test_the_counts_equal_the_rules_applied_one_participant_at_a_time(people):
    participants, visits, primary = [], [], []
    expected: dict[str, Counter] = {"rest": Counter(), "exercise": Counter()}
    for pid, (arm, status, visit, entries) in enumerate(people, 1):
        participants.append((pid, arm, status))
        row = (pid, "w10", *visit) if visit else None
        if row:
            visits.append(row)
        rows = [(pid, "w10", score, not_done) for score, not_done in entries]
        primary.extend(rows)
        expected[arm][reference_reason(pid, status, row, rows, TODAY)] += 1
    result = consort.count(
        screening={}, enrolled_not_randomized={},
        participants=pd.DataFrame(participants, columns=["participant_id", "arm", "status"]),
        visits=pd.DataFrame(visits, columns=["participant_id", "visit", "window_end", "outcome"]),
        primary=pd.DataFrame(primary, columns=["participant_id", "visit", "score", "not_done"]),
        visit_labels=[("w10", "10 weeks")], arm_labels=[("rest", "A"), ("exercise", "B")],
        today=TODAY,
    )  # fmt: skip
    for arm in result.arms:
        (w10,) = arm.visits
        want = expected[arm.code]
        assert w10.analysed == want.pop(consort.ANALYSED, 0)
        assert w10.not_yet_due == want.pop(consort.NOT_YET_DUE, 0)
        assert w10.not_analysed == {reason: n for reason, n in want.items() if n}
        assert arm.allocated == sum(1 for p in people if p[0] == arm.code)


def test_every_randomized_participant_is_counted_once_per_visit():
    result = build()
    for arm in result.arms:
        for visit in arm.visits:
            assert visit.analysed + visit.missing + visit.not_yet_due == arm.allocated


def test_the_svg_is_well_formed_and_says_the_numbers():
    result = build()
    text = consort.svg(result)
    root = ET.fromstring(text)
    assert root.tag.endswith("svg")
    strings = " ".join(t.text for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Assessed for eligibility (n = 16)" in strings
    assert "Randomized (n = 7)" in strings
    assert "Allocated to Arm A (n = 3)" in strings
    assert "10 weeks: analysed (n = 1)" in strings


def test_labels_are_escaped():
    text = consort.svg(build(arm_labels=[("rest", "<b>&"), ("exercise", "B")]))
    ET.fromstring(text)
    assert "<b>&" not in text


def test_an_empty_trial_draws():
    result = build(
        screening={},
        enrolled_not_randomized={},
        participants=pd.DataFrame(columns=["participant_id", "arm", "status"]),
        visits=pd.DataFrame(columns=["participant_id", "visit", "window_end", "outcome"]),
        primary=pd.DataFrame(columns=["participant_id", "visit", "score", "not_done"]),
    )
    assert (result.assessed, result.randomized) == (0, 0)
    ET.fromstring(consort.svg(result))


def test_the_module_is_pure():
    tree = ast.parse(inspect.getsource(consort))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name.split(".")[0] == "django" for name in imported)


def test_the_pdf_is_a_valid_one_page_document_with_the_numbers():
    reader = pypdf.PdfReader(io.BytesIO(consort.pdf(build())), strict=True)
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Assessed for eligibility (n = 16)" in text
    assert "Randomized (n = 7)" in text
    assert "Allocated to Arm B (n = 4)" in text
    assert "• Died (n = 1)" in text
    assert reader.metadata.title == "CONSORT flow diagram"


def svg_lines(text: str) -> list[str]:
    root = ET.fromstring(text)
    return [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_the_pdf_says_every_line_of_the_svg_in_order():
    result = build()
    text = pypdf.PdfReader(io.BytesIO(consort.pdf(result)), strict=True).pages[0].extract_text()
    lines = svg_lines(consort.svg(result))
    assert len(lines) > 20
    assert text.splitlines() == lines


def test_pdf_text_keeps_parentheses_backslashes_and_characters_beyond_latin1():
    # Arm labels are free text in any language: a Cyrillic, a Greek or a Danish label must
    # reach the PDF as typed (the SVG keeps them; the PDF carries its fonts).
    odd = build(arm_labels=[("rest", "A (\\) ≥ ✓"), ("exercise", "Сон Øvelse α")])
    text = pypdf.PdfReader(io.BytesIO(consort.pdf(odd)), strict=True).pages[0].extract_text()
    assert "Allocated to A (\\) ≥ ✓ (n = 3)" in text
    assert "Allocated to Сон Øvelse α (n = 4)" in text


def test_the_pdf_page_is_the_svg_size_in_points():
    result = build()
    root = ET.fromstring(consort.svg(result))
    page = pypdf.PdfReader(io.BytesIO(consort.pdf(result)), strict=True).pages[0]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == (
        float(root.get("width")), float(root.get("height")),
    )  # fmt: skip


def test_a_voided_screening_is_neither_assessed_nor_excluded(modic, site1, clinician, manager):
    """A screening record voided as entered in error (a resubmitted form, the wrong patient)
    is no patient assessed for eligibility."""
    from outcomes.results.selectors import consort_counts
    from participants import services
    from tests import factories

    answers = factories.eligible_answers(modic)
    pregnancy = modic.criteria.get(question="Pregnant?")
    ineligible = {**answers, pregnancy.pk: True}
    screened = [
        services.screening_record(
            trial=modic, site=site1, initials=initials, screened_on=services.trial_today(modic),
            answers=given, by=clinician,
        )[0]
        for initials, given in (("AB", answers), ("CD", answers), ("EF", ineligible),
                                ("GH", ineligible))
    ]  # fmt: skip
    arms = [("rest", "Rest"), ("exercise", "Exercise")]
    before = consort_counts(modic, arms, services.trial_today(modic))
    assert before.assessed == 4
    assert before.excluded == {
        "Not meeting the criteria": 2, "Declined to participate": 0, "Other reasons": 2,
    }  # fmt: skip
    services.screening_void(screening=screened[1], reason="Entered twice", by=manager)
    services.screening_void(screening=screened[3], reason="Wrong patient", by=manager)
    after = consort_counts(modic, arms, services.trial_today(modic))
    assert after.assessed == 2
    assert after.excluded == {
        "Not meeting the criteria": 1, "Declined to participate": 0, "Other reasons": 1,
    }  # fmt: skip
