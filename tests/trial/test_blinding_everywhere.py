"""Blinding acceptance: as a blinded statistician, no response of any URL — the main site's
pages, the results dashboard, the CONSORT downloads, the admin and an export bundle — shows
an arm's name or description. After unblinding, the names appear (and the unblinding is in
the audit log).

The demo trial's registered title ("Rest versus exercise for ...") names the interventions;
it is public and says nothing about which code is which arm, so occurrences of the title are
removed before looking for arm names.
"""

from __future__ import annotations

import io
import re
import zipfile

import pypdf
import pytest
from django.core.cache import cache
from django.urls import reverse

from outcomes.results.models import ExportJob
from tests.outcomes.results.test_analysis_data import randomized, record_w10
from tests.participants.test_views import PAGES, page_url, site1_objects  # noqa: F401
from trial import blinding
from trial.models import Arm, BlindingLog


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def leaks(text: str, trial) -> list[str]:
    """Arm names (whole words, any case) and descriptions found in `text`, outside the
    trial's title."""
    text = text.replace(trial.name, " ")
    found = []
    for arm in Arm.objects.filter(trial=trial):
        if re.search(rf"\b{re.escape(arm.name)}\b", text, flags=re.IGNORECASE):
            found.append(arm.name)
        if arm.description and arm.description in text:
            found.append(arm.description)
    return found


def admin_urls():
    return [
        reverse("admin:index"),
        reverse("results_index"),
        reverse("admin:trial_trial_changelist"),
        reverse("admin:participants_allocation_changelist"),
        reverse("admin:sms_outboundmessage_changelist"),
    ]


def test_a_blinded_statistician_sees_no_arm_name_anywhere(
    client,
    modic,
    site1,
    site2,
    clinician,
    manager,
    statistician,
    django_capture_on_commit_callbacks,
    site1_objects,  # noqa: F811
):
    people = [randomized(modic, (site1, site2)[n % 2], manager, pain=5 + n % 4) for n in range(6)]
    for n, participant in enumerate(people[:5]):
        record_w10(participant, manager, pain=2 + n, answer=1 + n % 4)
    client.force_login(statistician)

    urls = [page_url(page, modic, site1_objects) for page in PAGES] + admin_urls()
    code = modic.code
    urls += [
        reverse("trial_results", args=[code]),
        reverse("trial_consort_svg", args=[code]),
        reverse("trial_unblind", args=[code]),
    ]
    for path in urls:
        response = client.get(path)
        body = response.content.decode(errors="replace")
        assert not leaks(body, modic), (path, response.status_code, leaks(body, modic))

    pdf = client.get(reverse("trial_consort_pdf", args=[code]))
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert not leaks(text, modic)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("trial_export_start", args=[code]), {})
    job = ExportJob.objects.get()
    assert job.status == ExportJob.Status.DONE and job.blinded
    download = client.get(reverse("trial_export_download", args=[code, job.pk]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    for name in archive.namelist():
        content = archive.read(name).decode("latin-1")
        assert not leaks(content, modic), name

    # After unblinding, the same statistician sees the names.
    blinding.trial_unblind(trial=modic, by=manager, reason="Final analysis signed off")
    html = client.get(reverse("trial_results", args=[code])).content.decode()
    assert all(arm.name in html for arm in Arm.objects.filter(trial=modic))
    assert BlindingLog.objects.filter(action="unblinded", user=manager).exists()
