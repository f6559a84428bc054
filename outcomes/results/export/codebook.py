"""The export's codebook: every variable of every table (name, label, type, unit, allowed
values, value labels, missing codes), the conversions shared by the CSV, Stata and SPSS
members, and the R script that reads the CSVs with factor levels and labels.

Pure: no Django, so the rules for names and codes can be tested on their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field

from outcomes.results import statfiles

YES_NO = {"1": "Yes", "0": "No"}
MISSING = "Empty = not recorded"


# --- Codebook -------------------------------------------------------------------------------


@dataclass
class Variable:
    table: str
    name: str
    label: str
    type: str  # string, category, integer, number, date, datetime, boolean, json
    unit: str = ""
    allowed: str = ""
    value_labels: dict[str, str] = field(default_factory=dict)
    missing: str = MISSING
    notes: str = ""
    # Text kept in the .dta/.sav files, in bytes (None: up to members.MAX_TEXT_BYTES); longer
    # values are cut there, counted in `notes`, and whole in the CSV.
    stat_width: int | None = None

    def row(self) -> dict:
        return {
            "table": self.table,
            "variable": self.name,
            "label": self.label,
            "type": self.type,
            "unit": self.unit,
            "allowed_values": self.allowed or "|".join(self.value_labels),
            "value_labels": json.dumps(self.value_labels, ensure_ascii=False)
            if self.value_labels
            else "",
            "missing_codes": self.missing,
            "notes": self.notes,
        }


CODEBOOK_FIELDS = [
    "table", "variable", "label", "type", "unit", "allowed_values", "value_labels",
    "missing_codes", "notes",
]  # fmt: skip


# Stata allows 32 characters in a variable name (SPSS 64, R more).
MAX_NAME = 32


def safe_name(name: str) -> str:
    """A variable name valid in Stata, SPSS and R: letters, digits, underscores, not a
    reserved word of either, at most 32 characters (a longer one keeps its start and a short
    hash of the whole, so distinct names stay distinct; the codebook gives the label)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    name = name if re.match(r"[A-Za-z]", name) else f"v_{name}"
    if statfiles.reserved(name):  # e.g. a factor coded "in" or "to"
        name = f"{name}_"
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = f"{name[: MAX_NAME - 7]}_{digest}"
    return name


def stat_codes(value_labels: dict[str, str]) -> dict[str, int]:
    """The numbers standing for a category's codes in Stata and SPSS: the codes themselves
    when they are integers (0/1 for yes/no, 1-7 for the global assessment), else 1, 2, ...
    in the codebook's order."""
    if all(re.fullmatch(r"-?\d+", code) for code in value_labels):
        return {code: int(code) for code in value_labels}
    return {code: n for n, code in enumerate(value_labels, 1)}


# Types whose CSV text is the value's plain number or code ("1", not "1.0" or "True").
CODED = {"boolean", "category", "integer", "number"}


def missing(value) -> bool:
    """None, NaN or NaT (the only values unequal to themselves), or pandas' NA (whose
    comparisons are NA, not a bool)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def text(value) -> str | None:
    """A code or number as text: True → "1", 2.0 → "2"."""
    if missing(value):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def csv_cell(value, type_: str):
    """A value as the CSV shows it: empty when missing, ISO dates and date-times."""
    if missing(value):
        return ""
    if type_ in CODED:
        return text(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value


def stat_value(value, variable: Variable, codes: dict[str, int] | None):
    """A value as Stata and SPSS store it: a category's number (`codes`, from stat_codes),
    a float, a date, a naive date-time or text; None when missing. A category value the
    codebook does not list is missing there (the CSV keeps it)."""
    if missing(value):
        return None
    if codes is not None:
        return codes.get(text(value))
    kind = variable.type
    if kind in {"integer", "number"}:
        return float(value)
    if kind == "date":
        return value.date() if isinstance(value, dt.datetime) else value
    if kind == "datetime":
        return value.replace(tzinfo=None)
    return str(value)


# --- R --------------------------------------------------------------------------------------


def _r(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid R string literal


def r_script(codebook: list[Variable]) -> str:
    lines = [
        "# Reads the export's CSV files with factor levels and variable labels (base R).",
        '# Run from the folder holding the unzipped files: source("read_data.R")',
        "",
    ]
    tables: dict[str, list[Variable]] = {}
    for variable in codebook:
        tables.setdefault(variable.table, []).append(variable)
    for table, variables in tables.items():
        classes = ", ".join(
            f'{x.name} = "character"'
            for x in variables
            if x.type in {"string", "category", "json", "date", "datetime", "boolean"}
        )
        lines.append(
            f'{table} <- read.csv({_r(table + ".csv")}, na.strings = "", '
            f'colClasses = c({classes}), encoding = "UTF-8")'
        )
        for x in variables:
            col = f"{table}${x.name}"
            if x.type == "date":
                lines.append(f"{col} <- as.Date({col})")
            elif x.type == "datetime":
                lines.append(f'{col} <- as.POSIXct({col}, format = "%Y-%m-%dT%H:%M:%OS")')
            if x.value_labels:
                levels = ", ".join(_r(k) for k in x.value_labels)
                labels = ", ".join(_r(v) for v in x.value_labels.values())
                lines.append(f"{col} <- factor({col}, levels = c({levels}), labels = c({labels}))")
            lines.append(f'attr({col}, "label") <- {_r(x.label)}')
        lines.append("")
    return "\n".join(lines)


# --- Entry point ----------------------------------------------------------------------------
