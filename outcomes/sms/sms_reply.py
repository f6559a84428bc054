"""What a reply to the weekly SMS does: a pure decision (no Django), applied by
outcomes.sms.tracking.inbound._receive once it has found the participants with the sender's
number (none: the message is only logged) and seen the message is no opt-out or opt-in
keyword (those apply to every participant with the number).

1. The participant and week the reply is for: of each participant sharing the number only
   the current week counts (their latest: answers to a week are accepted until the next one
   opens). Among those, a week still open that awaits an answer first, the most recently
   opened; else the most recent week. With no week at all, the most recently randomized
   participant with the number.
2. A participant who is not tracked (outcomes.sms.sms_recipients) gets nothing.
3. A week closed (or none, or SMS switched off for the trial) takes no answer: after the last
   week a late reply belongs to no week and no question (kept raw, no reply).
4. A week whose questions are all answered: an extra message, kept, no reply.
5. The reply is read against the question asked (outcomes.sms.sms_rules.classify). Not an
   answer: a clarification is sent while the week has clarifications left. An answer: it
   is stored, the silent-weeks count resets, and the next question (or the thank-you when
   it was the last) is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from outcomes.sms import sms_rules

# The decision's kinds are outcomes.models.InboundMessage.Kind values (a test checks).
NOT_TRACKED = "not_tracked"
NO_QUESTION = "no_question"
EXTRA = "extra"
INVALID = "invalid"
ANSWER = "answer"


@dataclass(frozen=True)
class Candidate:
    """A participant with the sender's number, most recently randomized first."""

    pk: int
    trial_id: int
    tracked: bool
    missed_weeks: int


@dataclass(frozen=True)
class CurrentWeek:
    """A candidate's latest week, most recently opened first."""

    pk: int
    participant_id: int
    send_date: dt.date
    current_question_id: int | None
    answered: int
    clarifications: int


@dataclass(frozen=True)
class Question:
    pk: int
    min_value: int
    max_value: int


@dataclass(frozen=True)
class TrialSms:
    """A trial's usable SMS configuration, as far as a reply needs it."""

    zone: ZoneInfo
    send_time: dt.time
    max_clarifications: int
    questions: tuple[Question, ...]  # in the order asked

    def question(self, pk: int | None) -> Question | None:
        return next((q for q in self.questions if q.pk == pk), None)

    def next_question(self, pk: int) -> Question | None:
        ids = [q.pk for q in self.questions]
        position = ids.index(pk)
        return self.questions[position + 1] if position + 1 < len(ids) else None

    def week_closes(self, send_date: dt.date) -> dt.datetime:
        """When a week stops accepting answers: the next send time after it opened."""
        return sms_rules.send_moment(send_date + dt.timedelta(days=7), self.zone, self.send_time)


@dataclass(frozen=True)
class ReplyDecision:
    kind: str  # one of the kinds above: what the message is, or why it is not an answer
    participant_id: int | None = None
    week_id: int | None = None
    question_id: int | None = None
    value: int | None = None
    clarify: bool = False  # send a clarification
    next_question_id: int | None = None  # an answer's next question; None: the week is done
    first_of_week: bool = False  # the week's first answer
    reset_missed: bool = False  # the participant's silent-weeks count goes back to 0


def decide_reply(
    *,
    body: str,
    candidates: Sequence[Candidate],
    weeks: Sequence[CurrentWeek],
    trials: Mapping[int, TrialSms | None],
    at: dt.datetime,
) -> ReplyDecision:
    """What the reply `body` received `at` does. `candidates`: at least one. `trials`: the
    configuration of each candidate's trial, None where SMS is switched off or unusable."""
    trial_of = {c.pk: c.trial_id for c in candidates}

    def closed(week: CurrentWeek) -> bool:
        config = trials.get(trial_of[week.participant_id])
        return config is None or at >= config.week_closes(week.send_date)

    week = next(
        (w for w in weeks if w.current_question_id is not None and not closed(w)),
        weeks[0] if weeks else None,
    )
    participant = (
        next(c for c in candidates if c.pk == week.participant_id) if week else candidates[0]
    )
    decided = ReplyDecision(NOT_TRACKED, participant_id=participant.pk)
    if not participant.tracked:
        return decided
    if week is None or closed(week):
        return replace(decided, kind=NO_QUESTION)
    return _in_week(body, participant, week, trials[participant.trial_id], decided)


def _in_week(
    body: str, participant: Candidate, week: CurrentWeek, config: TrialSms, decided: ReplyDecision
) -> ReplyDecision:
    decided = replace(decided, kind=EXTRA, week_id=week.pk)
    if week.current_question_id is None:
        return decided
    question = config.question(week.current_question_id)
    if question is None:
        return replace(decided, kind=NO_QUESTION)
    decided = replace(decided, question_id=question.pk)
    reading = sms_rules.classify(body, question.min_value, question.max_value)
    if reading.kind != "answer":
        clarify = week.clarifications < config.max_clarifications
        return replace(decided, kind=INVALID, clarify=clarify)
    following = config.next_question(question.pk)
    return replace(
        decided,
        kind=ANSWER,
        value=reading.value,
        next_question_id=following.pk if following else None,
        first_of_week=week.answered == 0,
        reset_missed=bool(participant.missed_weeks),
    )
