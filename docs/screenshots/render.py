"""Render a log and its enriched markdown to HTML the way GitHub shows them, for a look
in a browser (the README's before/after screenshots).

    python docs/screenshots/render.py FILE.md OUT.html [LABEL]

markdown-it-py (CommonMark, tables, strikethrough; raw HTML passes, so the block
markers are invisible comments) and a GitHub-like stylesheet. Then, e.g.::

    chromium --headless --no-sandbox --hide-scrollbars --screenshot=out.png \\
        --window-size=1000,1400 OUT.html
"""

import sys
from pathlib import Path

from markdown_it import MarkdownIt

CSS = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", Helvetica,
       Arial, sans-serif, "Noto Color Emoji"; font-size: 16px; line-height: 1.5;
       color: #1f2328; max-width: 940px; margin: 24px auto; padding: 0 24px; }
h1, h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }
h1 { font-size: 2em; } h2 { font-size: 1.5em; }
a { color: #0969da; text-decoration: none; }
ul, ol { padding-left: 2em; } li + li { margin-top: .25em; }
blockquote { margin: 0 0 16px; padding: 0 1em; color: #59636e;
             border-left: .25em solid #d1d9e0; }
code { background: #eff1f3; border-radius: 6px; padding: .2em .4em; font-size: 85%; }
table { border-collapse: collapse; margin: 16px 0; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
tr:nth-child(2n) { background: #f6f8fa; }
img { max-width: 100%; }
.label { font: 600 13px monospace; color: #fff; background: #59636e; padding: 2px 8px;
         border-radius: 4px; }
"""


def page(title: str, markdown: str) -> str:
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return (f"<!doctype html><meta charset=utf-8><style>{CSS}</style>"
            f"<p><span class=label>{title}</span></p>{md.render(markdown)}")


if __name__ == "__main__":
    log, out = Path(sys.argv[1]), Path(sys.argv[2])
    title = sys.argv[3] if len(sys.argv) > 3 else log.name
    Path(out).write_text(page(title, log.read_text(encoding="utf-8")), encoding="utf-8")
