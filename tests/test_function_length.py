"""No function in the product packages is longer than a screen unless it says why.

A function over MAX_LINES lines (from its `def` to its last line) fails this check unless the
comment just above it (above its decorators, if any) starts `# long:` and gives the reason;
the comment may run on over several lines. Run by `make lint`; ruff's C901 checks cyclomatic complexity beside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("trial", "participants", "outcomes")
MAX_LINES = 80
MARK = "# long:"



def too_long(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, line of the def, length) of each function over MAX_LINES lines
    without a `# long:` reason above it."""
    lines = source.splitlines()
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                length = child.end_lineno - child.lineno + 1
                top = min([d.lineno for d in child.decorator_list] + [child.lineno])
                if length > MAX_LINES and not _reason_above(lines, top):
                    found.append((name, child.lineno, length))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def _reason_above(lines: list[str], top: int) -> str:
    """The `# long:` reason in the comment block ending on the line above line `top`."""
    block: list[str] = []
    index = top - 2
    while index >= 0 and lines[index].strip().startswith("#"):
        block.insert(0, lines[index].strip())
        index -= 1
    if not block or not block[0].startswith(MARK):
        return ""
    return " ".join([block[0][len(MARK) :]] + [line.lstrip("# ") for line in block[1:]]).strip()


def product_modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    ]


def offenders() -> list[tuple[str, str, int, int]]:
    return [
        (str(path.relative_to(ROOT)), name, line, length)
        for path in product_modules()
        for name, line, length in too_long(path.read_text(encoding="utf-8"))
    ]


def test_no_product_function_is_over_80_lines_without_a_reason():
    unexplained = offenders()
    assert not unexplained, (
        f"Functions over {MAX_LINES} lines (path, name, line, length): shorten them, or put a "
        f"'{MARK} <why>' comment on the line above the def: {unexplained}"
    )


def test_the_check_finds_long_functions_and_accepts_a_reason():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))  # with its def: 81 lines
    at_limit = "".join(f"    y{i} = {i}\n" for i in range(MAX_LINES - 1))
    method = body.replace("    ", "        ")
    source = "\n".join(
        [
            f"def long_one():\n{body}",
            f"# long: a reason\n@decorated\ndef explained():\n{body}",
            f"# long: a reason that\n# runs on\ndef explained_over_two_lines():\n{body}",
            f"#long without the colon\ndef badly_marked():\n{body}",
            f"# long:\ndef no_reason_given():\n{body}",
            f"# long: a reason\n\ndef separated_by_a_blank_line():\n{body}",
            f"# a comment first\n# long: then the mark\ndef mark_not_first():\n{body}",
            f"class Holder:\n    def method(self):\n{method}",
            "def short():\n    return 1\n",
            f"def exactly_at_the_limit():\n{at_limit}",
        ]
    )
    found = {name for name, _, _ in too_long(source)}
    assert found == {
        "long_one", "badly_marked", "no_reason_given", "separated_by_a_blank_line",
        "mark_not_first", "Holder.method",
    }  # fmt: skip


def test_the_check_reads_every_product_package_and_skips_migrations():
    modules = product_modules()
    tops = {path.relative_to(ROOT).parts[0] for path in modules}
    assert tops == set(PACKAGES)
    assert not [p for p in modules if "migrations" in p.parts]
    assert any(p.name == "minimization.py" for p in modules)
