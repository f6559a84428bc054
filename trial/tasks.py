"""Account e-mails (Celery): the password reset link (trial.accounts)."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.core.mail import send_mail


# As the coordinator digests (participants.tasks): SMTP outages last minutes, so back off
# from 30 s over five retries; the link stays valid for PASSWORD_RESET_TIMEOUT.
@shared_task(
    bind=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=30,
    max_retries=5,
)
def send_account_mail(self, subject: str, body: str, to: str) -> None:
    send_mail(subject, body, None, [to])
