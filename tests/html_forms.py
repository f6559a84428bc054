"""What a browser would submit: every form of a page (method, action and fields as shown) and
the query parameters its links and GET forms use. Used by tests that post a page's own forms
back, changed (tests/test_fuzz_urls.py, tests/trial/test_admin_input.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit


@dataclass
class Form:
    method: str  # "get" or "post"
    action: str  # absolute path, without the query string
    fields: dict[str, list[str]] = field(default_factory=dict)
    # Fields whose value is chosen from a list (select, radio): their options, for tests
    # that want a value the page offered.
    choices: dict[str, list[str]] = field(default_factory=dict)

    def data(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.fields.items()}


class _Page(HTMLParser):
    def __init__(self, path: str):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.forms: list[Form] = []
        self.link_params: set[str] = set()
        self.form: Form | None = None
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.textarea: str | None = None
        self.text = ""

    def _add(self, name: str, value: str) -> None:
        if self.form is not None:
            self.form.fields.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "a" and attrs.get("href"):
            url = urlsplit(urljoin(self.path, attrs["href"]))
            if url.path == urlsplit(self.path).path:
                self.link_params |= {k for k, _ in parse_qsl(url.query, keep_blank_values=True)}
        if tag == "form":
            action = urlsplit(urljoin(self.path, attrs.get("action") or self.path))
            self.form = Form(method=(attrs.get("method") or "get").lower(), action=action.path)
            self.forms.append(self.form)
            return
        if tag == "option" and self.select:
            self.options.append((attrs.get("value", ""), "selected" in attrs))
            return
        name = attrs.get("name")
        if self.form is None or not name:
            return
        if tag == "input":
            kind = attrs.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                self.form.choices.setdefault(name, []).append(attrs.get("value") or "on")
                if "checked" in attrs:
                    self._add(name, attrs.get("value") or "on")
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self._add(name, attrs.get("value", ""))
        elif tag == "select":
            self.select, self.options = name, []
        elif tag == "textarea":
            self.textarea, self.text = name, ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "select" and self.select:
            if self.form is not None:
                self.form.choices[self.select] = [v for v, _ in self.options]
            chosen = [v for v, selected in self.options if selected] or [
                v for v, _ in self.options[:1]
            ]
            for value in chosen:
                self._add(self.select, value)
            self.select = None
        elif tag == "textarea" and self.textarea:
            self._add(self.textarea, self.text.removeprefix("\n"))
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.text += data


@dataclass
class Page:
    forms: list[Form]
    # Query parameters the page itself uses: its GET forms' fields and its links to itself.
    query_params: set[str]


def parse(html: str, path: str) -> Page:
    """The forms of `html`, served at `path`, and the query parameters it uses."""
    parser = _Page(path)
    parser.feed(html)
    parser.close()
    params = set(parser.link_params)
    for form in parser.forms:
        if form.method == "get" and form.action == urlsplit(path).path:
            params |= set(form.fields) | set(form.choices)
    return Page(forms=parser.forms, query_params=params)
