"""Static files as production serves them: WhiteNoise's storage, which `collectstatic`
fills with content-hashed names (cached for ever by browsers, so a new release can never
be styled by an old file) and gzip copies of each file, listed in a manifest.

Only a deployment runs collectstatic. Development (DEBUG on) is served unhashed names from
the source folders by WhiteNoise; tests and benchmarks run with DEBUG off and no manifest,
where the stock storage would refuse to render any page ("Missing staticfiles manifest
entry"). Without a manifest the names are therefore left as they are; `check --deploy`
warns when a production server has none (trial.checks.static_files_collected).
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    def stored_name(self, name: str) -> str:
        if not self.hashed_files:  # no manifest: collectstatic has not run
            return name
        return super().stored_name(name)

    def has_manifest(self) -> bool:
        return self.read_manifest() is not None
