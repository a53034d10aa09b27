"""Plain-text table formatting for the CLI."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str] | None = None) -> str:
    """Left-aligned columns separated by two spaces; a dashed rule under the header."""
    allrows = ([list(header)] if header else []) + [[str(c) for c in r] for r in rows]
    if not allrows:
        return ""
    widths = [max(len(str(r[i])) for r in allrows) for i in range(len(allrows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in allrows]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def cell(x: object) -> str:
        return str(x).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
