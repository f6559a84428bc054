"""What we measure and conclude: instrument entries, weekly SMS, ITT analysis, exports.

Filled in by the outcomes, SMS and dashboard issues; the app exists from the start so the
layout and migrations history stay stable.
"""
