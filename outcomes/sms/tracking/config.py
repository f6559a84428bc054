"""A trial's weekly SMS configuration as the jobs and replies read it: loaded once and
cached per process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

from outcomes.sms import sms_reply
from outcomes.sms.models import SmsLanguage, SmsQuestion, SmsQuestionText, SmsSchedule
from trial.models import Trial


@dataclass(frozen=True)
class SmsConfig:
    schedule: SmsSchedule
    questions: list[SmsQuestion]
    languages: dict[str, SmsLanguage]
    # {(question id, language code): text}
    texts: dict[tuple[int, str], str]
    zone: ZoneInfo

    def language(self, code: str) -> SmsLanguage:
        return self.languages.get(code) or self.languages[self.schedule.default_language]

    def question_text(self, question: SmsQuestion, language_code: str) -> str:
        code = self.language(language_code).code
        return (
            self.texts.get((question.pk, code))
            or self.texts[(question.pk, self.schedule.default_language)]
        )

    def next_question(self, question: SmsQuestion) -> SmsQuestion | None:
        ids = [q.pk for q in self.questions]
        position = ids.index(question.pk)
        return self.questions[position + 1] if position + 1 < len(ids) else None

    @cached_property
    def reply_rules(self) -> sms_reply.TrialSms:
        """What outcomes.sms.sms_reply needs of the configuration (kept with the cached config)."""
        return sms_reply.TrialSms(
            zone=self.zone,
            send_time=self.schedule.send_time,
            max_clarifications=self.schedule.max_clarifications,
            questions=tuple(
                sms_reply.Question(q.pk, q.min_value, q.max_value) for q in self.questions
            ),
        )


# Every inbound reply needs the configuration, which changes rarely (in the admin): each
# process keeps it CONFIG_TTL seconds. A change saved in this process clears it at once
# (outcomes.sms.apps connects clear_sms_config_cache to the configuration models' signals);
# other processes see it within CONFIG_TTL. Read afresh for every reply, it was a quarter
# of the work of a reply (docs/PERFORMANCE.md).
CONFIG_TTL = 60.0
_config_cache: dict[int, tuple[float, SmsConfig | None]] = {}


def sms_config(trial: Trial | int) -> SmsConfig | None:
    """The trial's SMS configuration, or None when it has no usable one (no schedule,
    disabled, no questions, or the default language missing)."""
    trial_id = trial if isinstance(trial, int) else trial.pk
    now = time.monotonic()
    cached = _config_cache.get(trial_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    config = _load_config(trial_id)
    _config_cache[trial_id] = (now + CONFIG_TTL, config)
    return config


def clear_sms_config_cache(**kwargs) -> None:
    _config_cache.clear()


def _load_config(trial_id: int) -> SmsConfig | None:
    schedule = SmsSchedule.objects.filter(trial_id=trial_id, enabled=True).first()
    if schedule is None:
        return None
    questions = list(SmsQuestion.objects.filter(trial_id=trial_id).order_by("order", "pk"))
    languages = {lang.code: lang for lang in SmsLanguage.objects.filter(trial_id=trial_id)}
    texts = {
        (t.question_id, t.language.code): t.text
        for t in SmsQuestionText.objects.filter(question__trial_id=trial_id).select_related(
            "language"
        )
    }
    if not questions or schedule.default_language not in languages:
        return None
    if any((q.pk, schedule.default_language) not in texts for q in questions):
        return None
    zone = Trial.objects.only("time_zone").get(pk=trial_id).zone
    return SmsConfig(schedule, questions, languages, texts, zone)
