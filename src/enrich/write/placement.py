"""Where the blocks of the enriched markdown go: found with a CommonMark/GFM parser.

The log is read as markdown by markdown-it-py (CommonMark plus GFM tables, the
structure GitHub renders). Each *leaf* block of the log (a paragraph with its lazy
continuation lines, a heading, a table, a code block, an HTML block, a link
reference definition) gets a :class:`Spot`: the line its enrich block is inserted
before, and the prefix that puts the inserted lines in the same container as the
leaf (the list item's content column as spaces, ``> `` per enclosing quote).

The rule, for a leaf holding links:

- *after* the leaf, when the leaf ends with its own last line whatever follows: a
  paragraph, heading, table, indented code, definition, a closed fenced code block,
  and an HTML block whose end condition is on its last line. The block's first line
  is an HTML comment, which interrupts a paragraph or a table and is never a lazy
  continuation line, so the leaf ends where it ended in the log and the next line
  of the log starts what it started there;
- *before* the leaf, when the leaf would swallow a line that follows it: an HTML
  block that ends at a blank line (CommonMark types 6 and 7), an unclosed fence or
  HTML block (they run to the end of their container);
- nowhere (no inline block; the summary still lists the records) when neither
  works: such a leaf that starts on a list item's marker line.

A link inside code is still a link to the extractor; its block goes after the code
block, outside it, never into the code.

Large logs are parsed a chunk of lines at a time (a top-level block that may go on
past the chunk is parsed again with the next one), so the parser's tokens take
memory in proportion to the largest top-level block, not to the log.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.rules_block.html_block import HTML_SEQUENCES
from markdown_it.token import Token

QUOTE_PREFIX = "> "
CHUNK_LINES = 4000

# A list item's marker after up to 3 spaces of indentation: a bullet, or 1-9 digits and
# "." or ")".
_MARKER = re.compile(r"( {0,3})([-+*]|\d{1,9}[.)])")
# Leaves: the open tokens of blocks that hold inline text, and blocks that are one token.
_LEAF_OPEN = frozenset({"paragraph_open", "heading_open", "table_open"})
_LEAF_SELF = frozenset({"fence", "code_block", "html_block", "definition"})


@dataclass(frozen=True, slots=True)
class Spot:
    """Insert a block before line ``line`` (0-based; the number of lines: at the end),
    each of its lines starting with ``prefix``."""

    line: int
    prefix: str


@dataclass(frozen=True, slots=True)
class Leaf:
    """A leaf block on lines ``start`` to ``end`` (exclusive), and where its block goes
    (None: it gets none)."""

    start: int
    end: int
    spot: Spot | None


@dataclass(slots=True)
class _Container:
    quote: bool
    first_line: int
    width: int = 0  # a list item's content column, from its parent's content start

    @property
    def prefix(self) -> str:
        return QUOTE_PREFIX if self.quote else " " * self.width


class Placement:
    """The leaves of a text, by line, and where its summary block goes."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.leaves: list[Leaf] = []
        open_ended_at_end: Leaf | None = None
        for leaf, top_level_open_ended in _leaves(lines):
            self.leaves.append(leaf)
            if leaf.end >= len(lines) and top_level_open_ended:
                open_ended_at_end = leaf
        self._starts = [leaf.start for leaf in self.leaves]
        # The summary goes at the end, at the top level, unless the text ends in an open
        # top-level leaf (an unclosed fence, say) that would swallow it: then before it.
        self.summary = Spot(len(lines) if open_ended_at_end is None else
                            open_ended_at_end.start, "")

    def leaf_of(self, line: int) -> Leaf | None:
        """The leaf holding line ``line`` (0-based), if any."""
        i = bisect.bisect_right(self._starts, line) - 1
        if i >= 0 and line < self.leaves[i].end:
            return self.leaves[i]
        return None


def _parser() -> MarkdownIt:
    # "definition" tokens for link reference definitions (markdown-it-py's option),
    # which otherwise leave no token; only the block structure is needed
    md = MarkdownIt("commonmark", {"inline_definitions": True}).enable("table")
    md.core.ruler.disable(["inline", "text_join"])
    return md


def _tokens(lines: Sequence[str]) -> Iterator[Token]:
    """The block tokens of the text, their ``map`` in lines of the whole text."""
    md = _parser()
    start, size = 0, CHUNK_LINES
    while start < len(lines):
        end = min(start + size, len(lines))
        tokens = md.parse("\n".join(lines[start:end]) + "\n")
        tops = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0]
        taken, advance = len(tokens), end - start
        if end < len(lines) and tops:
            # the last top-level block may go on past the chunk: parse it again next time
            last = tops[-1]
            first_line = _map(tokens[last])[0]
            if first_line == 0:  # one top-level block fills the chunk: a bigger chunk
                size *= 2
                continue
            taken, advance = last, first_line
        for tok in tokens[:taken]:
            if tok.map is not None:
                tok.map = [tok.map[0] + start, tok.map[1] + start]
            yield tok
        start, size = start + advance, CHUNK_LINES


def _map(tok: Token) -> tuple[int, int]:
    assert tok.map is not None  # every block token the rules above look at has one
    return tok.map[0], tok.map[1]


def _leaves(lines: Sequence[str]) -> Iterator[tuple[Leaf, bool]]:
    """Every leaf block with its spot, and whether it is an open-ended top-level one."""
    stack: list[_Container] = []
    for tok in _tokens(lines):
        if tok.type in ("blockquote_open", "list_item_open"):
            first = _map(tok)[0]
            container = _Container(quote=tok.type == "blockquote_open", first_line=first)
            if not container.quote:
                container.width = _item_width(lines[first], stack)
            stack.append(container)
        elif tok.type in ("blockquote_close", "list_item_close"):
            stack.pop()
        elif tok.type in _LEAF_OPEN or tok.type in _LEAF_SELF:
            start, end = _map(tok)
            prefix = "".join(c.prefix for c in stack)
            spot: Spot | None = Spot(end, prefix)
            closed = _ends_with_its_last_line(tok)
            if not closed:
                on_marker_line = any(not c.quote and c.first_line == start for c in stack)
                spot = None if on_marker_line else Spot(start, prefix)
            yield Leaf(start, end, spot), not closed and not stack


def _ends_with_its_last_line(tok: Token) -> bool:
    """Whether a leaf block ends with its last line, whatever line follows."""
    if tok.type == "fence":
        # content is the lines between the fences: a closed fence has two more lines
        start, end = _map(tok)
        return end - start == tok.content.count("\n") + 2
    if tok.type == "html_block":
        text = tok.content.rstrip("\n").split("\n")
        first, last = text[0].lstrip(" \t"), text[-1]
        for i, (opener, closer, _) in enumerate(HTML_SEQUENCES):
            if opener.search(first):
                # the last two kinds (6 and 7) end only at a blank line
                return i < len(HTML_SEQUENCES) - 2 and bool(closer.search(last))
        return False
    return True


def _item_width(line: str, outer: Sequence[_Container]) -> int:
    """The content column of the list item starting on ``line``, counted from the
    content start of its parent container (``outer`` are its enclosing containers)."""
    text = line.expandtabs(4)  # CommonMark's tab stops are 4 columns apart
    col = 0
    for container in outer:  # skip what the enclosing containers take of this line
        if container.quote:
            col += len(text[col:]) - len(text[col:].lstrip(" "))
            if text.startswith(">", col):
                col += 1
                if text.startswith(" ", col):
                    col += 1
        else:
            col += container.width
    m = _MARKER.match(text, col)
    if m is None:  # cannot happen on an item's first line; any width is better than none
        return 2
    after = text[m.end():]
    spaces = len(after) - len(after.lstrip(" "))
    if not after.strip() or spaces > 4:  # blank start, or indented code: one space counts
        spaces = 1
    return len(m.group(0)) + spaces
