"""Plain text from documentation pages (HTML, troff man pages, Markdown), for pocketlm's base-model corpus.

Why: the corpus is built from Debian documentation packages, offline, with the Python standard library only
(html.parser, re, gzip). Each extractor returns a list of paragraphs: prose paragraphs have their whitespace
collapsed to single spaces; preformatted blocks (<pre>, .nf/.CS in man pages, ``` fences) keep their lines and
indentation (tabs expanded, trailing spaces dropped), since code is part of what the model should see.
Navigation, tables of contents, sidebars, header links, scripts and styles are dropped; `is_boilerplate` drops
the paragraphs every page repeats (copyright lines, "Previous topic", ...).
"""

import gzip
import re
from html.parser import HTMLParser

__all__ = ["Para", "html_to_paragraphs", "man_to_paragraphs", "markdown_to_paragraphs", "is_boilerplate",
           "read_text_file"]


class Para(str):
    """A paragraph; `pre` is True for a preformatted (code) block."""

    pre = False

    @staticmethod
    def make(text, pre=False):
        p = Para(text)
        p.pre = pre
        return p


def read_text_file(path):
    """The file as text (gunzipped when it ends in .gz); undecodable bytes become U+FFFD."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    return data.decode("utf-8", errors="replace")


_WS = re.compile(r"\s+")


def _prose(text):
    return _WS.sub(" ", text).strip()


def _code(text):
    lines = [ln.expandtabs(4).rstrip() for ln in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_BLOCK = {"address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div", "dl", "dt",
          "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
          "main", "ol", "p", "section", "summary", "table", "tbody", "td", "th", "thead", "tr", "ul", "br"}
_SKIP_TAGS = {"script", "style", "head", "nav", "noscript", "svg", "button", "select", "textarea", "iframe",
              "object", "template"}
# class / id / role words that mark navigation and other non-content blocks in Sphinx, DocBook (PostgreSQL),
# SQLite's and Node.js's page layouts.
_SKIP_WORDS = {"nav", "navigation", "navheader", "navfooter", "sphinxsidebar", "sphinxsidebarwrapper", "related",
               "footer", "header", "toc", "fancy-toc1", "fancy-toc2", "fancy-toc3", "menu", "mainmenu", "submenu",
               "nosearch", "breadcrumb", "breadcrumbs", "headerlink", "search", "searchbox", "inline-search",
               "toctree-wrapper", "contents", "column2", "gtoc", "mobile-nav", "menu-wrapper", "imgcontainer",
               "version_switcher_placeholder", "language_switcher_placeholder", "toc-container", "api_stability",
               "srclink", "copyright", "mark", "viewcode-link", "reference-links", "backlink"}
_MAIN_PATTERNS = [("role", "main"), ("id", "apicontent"), ("id", "docs-content"), ("id", "yui-main"), ("tag", "main")]


def _attr_words(attrs):
    words = set()
    for k, v in attrs:
        if k in ("class", "id", "role") and v:
            words.update(v.lower().split())
    return words


class _HtmlText(HTMLParser):
    def __init__(self, main):
        super().__init__(convert_charrefs=True)
        self.main = main  # (kind, value) of the content container, or None: the whole body
        self.stack = []  # (tag, skip, is_main)
        self.skip = 0  # > 0 inside a skipped element
        self.in_main = 0 if main else 1
        self.pre = 0
        self.cur = []
        self.paras = []
        self.row = None  # cells of the current table row

    def _flush(self):
        text = "".join(self.cur)
        self.cur = []
        if self.pre:
            return
        t = _prose(text)
        if t:
            self.paras.append(Para.make(t))

    def _is_main(self, tag, attrs):
        kind, value = self.main
        if kind == "tag":
            return tag == value
        return any(k == kind and v is not None and value in v.lower().split() for k, v in attrs)

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            if tag in ("br", "hr") and self.in_main and not self.skip:
                if self.pre:
                    self.cur.append("\n")
                else:
                    self._flush()
            return
        skip = tag in _SKIP_TAGS or bool(_attr_words(attrs) & _SKIP_WORDS)
        is_main = bool(self.main) and not self.in_main and self._is_main(tag, attrs)
        if tag in _BLOCK and not self.pre:
            self._flush()
        if tag == "pre" and not self.skip:
            self._flush()
            self.pre += 1
        self.stack.append((tag, skip, is_main))
        self.skip += skip
        self.in_main += is_main
        if tag in ("td", "th") and self.row is not None and not self.pre:
            self.cur = []

    def handle_endtag(self, tag):
        if tag in _VOID or not any(t == tag for t, _, _ in self.stack):
            return  # stray end tag
        while self.stack:
            t, skip, is_main = self.stack.pop()
            self._close(t, skip, is_main)
            if t == tag:
                break

    def _close(self, tag, skip, is_main):
        if tag == "pre" and self.pre:
            self.pre -= 1
            if not self.pre and not self.skip and self.in_main:
                code = _code("".join(self.cur))
                if code:
                    self.paras.append(Para.make(code, pre=True))
            if not self.pre:
                self.cur = []
        elif tag in ("td", "th") and self.row is not None and not self.pre:
            self.row.append(_prose("".join(self.cur)))
            self.cur = []
        elif tag == "tr" and self.row is not None:
            cells = [c for c in self.row if c]
            if cells and not self.skip and self.in_main:
                self.paras.append(Para.make(" | ".join(cells)))
            self.row = []
        elif tag in _BLOCK and not self.pre:
            self._flush()
        if tag == "table":
            self.row = None
        self.skip -= skip
        self.in_main -= is_main

    def handle_data(self, data):
        if self.skip or not self.in_main:
            return
        if self.row is None and self.stack and self.stack[-1][0] in ("table", "tbody", "thead"):
            return
        self.cur.append(data)

    def close(self):
        super().close()
        while self.stack:
            t, skip, is_main = self.stack.pop()
            self._close(t, skip, is_main)
        self._flush()


class _TableAware(_HtmlText):
    def handle_starttag(self, tag, attrs):
        if tag == "table" and not self.pre:
            super().handle_starttag(tag, attrs)
            self.row = []
            return
        super().handle_starttag(tag, attrs)


def html_to_paragraphs(text):
    """Paragraphs of an HTML page's main content (see the module docstring)."""
    main = None
    low = text.lower()
    for kind, value in _MAIN_PATTERNS:
        needle = f"<{value}" if kind == "tag" else None
        if needle is not None:
            if re.search(rf"<{value}[\s>]", low):
                main = (kind, value)
                break
        elif re.search(rf"""{kind}\s*=\s*["']?[^"'>]*\b{re.escape(value)}\b""", low):
            main = (kind, value)
            break
    p = _TableAware(main)
    p.feed(text)
    p.close()
    return p.paras


# --- troff man pages ----------------------------------------------------------------------------------------

_MAN_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?\d"), ""),  # size changes
    (re.compile(r"\\\((em|en)"), "\u2014"),
    (re.compile(r"\\\(bu"), "\u2022"),
    (re.compile(r"\\\((lq|rq|oq|cq)"), '"'),
    (re.compile(r"\\\(co"), "(c)"),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),  # other named glyphs
    (re.compile(r"\\\*(\(..|\[[^\]]*\]|.)"), ""),  # strings
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\[e\\]"), "\\\\"),
    (re.compile(r"\\[&|^%:cdu]"), ""),
    (re.compile(r"\\[ ~0]"), " "),
    (re.compile(r"\\(.)"), r"\1"),
]


def _man_inline(s):
    for rx, rep in _MAN_ESCAPES:
        s = rx.sub(rep, s)
    return s


def _man_args(rest):
    args = re.findall(r'"((?:[^"]|"")*)"|(\S+)', rest)
    return [a or b for a, b in args]


def man_to_paragraphs(text):
    """Paragraphs of a troff man page (man macros plus the Tcl manual's .CS/.CE, .QW, .AP, .OP extensions)."""
    paras, cur = [], []
    pre = False
    in_def = False

    def flush():
        if pre:
            code = _code("\n".join(cur))
            if code:
                paras.append(Para.make(code, pre=True))
        else:
            t = _prose(" ".join(cur))
            if t:
                paras.append(Para.make(t))
        cur.clear()

    for line in text.split("\n"):
        if in_def:
            in_def = not line.startswith("..")
            continue
        if line.startswith(('.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".", "'")) and len(line) > 1:
            m = re.match(r"[.']\s*(\S+)\s*(.*)", line)
            if not m:
                continue
            macro, rest = m.group(1), m.group(2)
            if macro in ("de", "de1", "am", "ig"):
                in_def = True
                continue
            if macro in ("nf", "CS", "DS"):
                flush()
                pre = True
            elif macro in ("fi", "CE", "DE"):
                flush()
                pre = False
            elif macro in ("SH", "SS"):
                flush()
                pre = False  # some pages leave .nf open across sections
                heading = _man_inline(" ".join(_man_args(rest))).strip()
                if heading:
                    paras.append(Para.make(heading.capitalize() if heading.isupper() else heading))
            elif macro in ("PP", "LP", "P", "sp", "br", "TP", "IP", "RS", "RE", "HP", "BS", "BE", "SE", "SO"):
                flush()
                if macro == "IP" and rest:
                    args = _man_args(rest)
                    if args and args[0] not in ("\\(bu", "*"):
                        cur.append(_man_inline(args[0]))
            elif macro in ("B", "I", "SM", "SB", "BR", "RB", "IR", "RI", "BI", "IB", "QW", "UR", "MT", "OP", "AP",
                           "CW"):
                args = [_man_inline(a) for a in _man_args(rest)]
                if macro in ("BR", "RB", "IR", "RI", "BI", "IB"):
                    cur.append("".join(args))
                elif macro == "QW":
                    cur.append('"' + args[0] + '"' + "".join(args[1:]) if args else "")
                else:
                    cur.append(" ".join(args))
            # every other request (.TH, .so, .ta, .ft, .ne, .in, .ti, ...) is dropped
            continue
        cur.append(_man_inline(line))
    flush()
    return paras


# --- Markdown -----------------------------------------------------------------------------------------------

_MD_INLINE = [
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"<[^>\n]+>"), ""),
]


def markdown_to_paragraphs(text):
    """Paragraphs of a Markdown file: fenced code kept as code, links and emphasis reduced to their text."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    paras, cur = [], []
    fence = None
    for line in text.split("\n"):
        if fence is not None:
            if line.strip().startswith(fence):
                code = _code("\n".join(cur))
                if code:
                    paras.append(Para.make(code, pre=True))
                cur, fence = [], None
            else:
                cur.append(line)
            continue
        m = re.match(r"\s*(```+|~~~+)", line)
        if m:
            t = _prose(" ".join(cur))
            if t:
                paras.append(Para.make(t))
            cur, fence = [], m.group(1)
            continue
        if re.match(r"\s*\[[^\]]+\]:\s*\S", line):  # link reference definition
            continue
        if not line.strip() or re.match(r"#+\s", line) or re.match(r"\s*([-*+]|\d+\.)\s", line):
            t = _prose(" ".join(cur))
            if t:
                paras.append(Para.make(t))
            cur = []
            line = re.sub(r"^#+\s*", "", line)
        for rx, rep in _MD_INLINE:
            line = rx.sub(rep, line)
        if line.strip():
            cur.append(line)
    t = _prose(" ".join(cur))
    if t:
        paras.append(Para.make(t))
    return paras


# --- boilerplate --------------------------------------------------------------------------------------------

_BOILER = re.compile(
    r"^(previous topic|next topic|this page|report a bug|show source|navigation|quick search|table of contents|"
    r"previous|next|up|home|index|modules|contents|prev|top|theme|auto|light|dark|"
    r"\u00b6|permalink|edit on github|created using sphinx.*|last updated on.*|"
    r"\u00a9? ?copyright\b.*|.*all rights reserved\.?|found a bug\?.*|.*\bsubmit a (bug|correction)\b.*|"
    r"this documentation is for.*version.*|this page last modified.*|last update:?|documentation for (the )?(supported|unsupported).*|"
    r"if you see anything in the documentation that is not correct.*)$",
    re.I)


def is_boilerplate(p):
    """True for a navigation or legal line that a page layout repeats, not content."""
    if p.pre:
        return False
    t = p.strip()
    if len(t) < 3:
        return True
    if len(t) < 200 and _BOILER.match(t):
        return True
    # a run of link labels: "Previous | Up | Next" and similar
    if len(t) < 120 and t.count("|") >= 2 and len(t.split()) <= 2 * t.count("|") + 3:
        return True
    return False
