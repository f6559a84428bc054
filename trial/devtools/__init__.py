"""Development-only tools: the demo trial (`manage.py seed_demo`, `make run`), the synthetic
trials and the benchmark harness (`make bench`).

Installed only when DEBUG or TRIALDESK_DEVTOOLS is on, and in the tests (trial/settings.py):
a production deployment carries neither the demo users' known passwords nor commands that
bulk-write synthetic participants. Product code never imports from here.
"""
