"""Whether a trial's configuration is complete enough to recruit, pure (no Django).

A trial set to recruiting appears on its users' pages and accepts screenings at once, so
everything a participant's path needs must be there first. `missing_for_recruiting` takes
plain counts (`Setup`) and returns what is missing, in the order a trial manager would
set it up; the admin builds the counts from what the page is about to save
(trial.admin) and shows the list. An empty list means ready.

What is required, and why:

1. A site: screenings, participants and their numbers belong to a site.
2. Two or more arms: there is nothing to randomize between otherwise.
3. Two or more levels for each minimization factor: a participant's level is needed to
   randomize, and a factor with one level balances nothing (everyone has that level), so
   it is an unfinished configuration, not a design.
4. A follow-up visit (a visit not done at randomization): the outcomes are measured there;
   without one no outcome can be recorded (a baseline visit alone is not a schedule).
5. An active consent document: consent is recorded against the version signed (ICH E6
   4.8); the consent page offers only active ones.
6. At least one eligibility criterion. Judged required: the screening log decides
   eligibility from the criteria alone, so with none every patient screened is recorded
   eligible and CONSORT's "not meeting inclusion criteria" is empty by construction, while
   every protocol states its criteria (SPIRIT 2013 item 10; CONSORT 2010 item 4a).

Settings that must suit the configuration (such as a preferred-arm probability that fits
the number of arms) are not "missing" parts: they are checked with the settings (Trial.clean,
and on the trial page the arm formset, which knows the arms the page leaves), and a trial
that fails them cannot screen or enroll (participants.services.common.require_recruiting).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_ARMS = 2
MIN_LEVELS = 2

# What can be missing, in the order a trial is set up.
SITE = "site"
ARMS = "arms"
FACTOR_LEVELS = "factor_levels"
FOLLOW_UP_VISIT = "follow_up_visit"
CONSENT_DOCUMENT = "consent_document"
CRITERIA = "criteria"
SITE_FACTOR_SITES = "site_factor_sites"


@dataclass(frozen=True)
class Setup:
    """A trial's configuration as counts: what it would be once the page saves."""

    sites: int
    arms: int
    follow_up_visits: int  # visit definitions not done at randomization
    active_consent_documents: int
    criteria: int  # eligibility criteria, inclusion and exclusion
    # (factor name, number of levels) for each minimization factor
    factors: tuple[tuple[str, int], ...] = field(default=())
    # The name of the factor whose levels are the sites, if any: it has one level per site,
    # so it needs a second site rather than levels of its own.
    site_factor: str = ""


@dataclass(frozen=True)
class Missing:
    """One missing part: `what` is one of the names above; `subject` names the factor for
    FACTOR_LEVELS and SITE_FACTOR_SITES; `have` is how many there are (arms, levels,
    sites)."""

    what: str
    subject: str = ""
    have: int = 0


def missing_for_recruiting(setup: Setup) -> list[Missing]:
    """What the trial still needs before it may recruit; empty when nothing."""
    missing = []
    if setup.sites < 1:
        missing.append(Missing(SITE))
    if setup.arms < MIN_ARMS:
        missing.append(Missing(ARMS, have=setup.arms))
    for name, levels in setup.factors:
        if name == setup.site_factor:
            if setup.sites < MIN_LEVELS:
                missing.append(Missing(SITE_FACTOR_SITES, subject=name, have=setup.sites))
        elif levels < MIN_LEVELS:
            missing.append(Missing(FACTOR_LEVELS, subject=name, have=levels))
    if setup.follow_up_visits < 1:
        missing.append(Missing(FOLLOW_UP_VISIT))
    if setup.active_consent_documents < 1:
        missing.append(Missing(CONSENT_DOCUMENT))
    if setup.criteria < 1:
        missing.append(Missing(CRITERIA))
    return missing
