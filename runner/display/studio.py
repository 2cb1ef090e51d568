"""What `bria-run status --all` prints: one line per pipeline of the studio's database."""

from __future__ import annotations

from typing import Any


def studio_text(entries: list[dict[str, Any]], location: str) -> str:
    if not entries:
        return f"{location}: no pipeline has run on this database yet"
    lines = [f"{len(entries)} pipeline(s) in {location}"]
    header = ("pipeline", "held by", "phase", "training", "scenes", "credits", "last error")
    rows = [header] + [(
        e["pipeline"], _held(e["lease"]), e["phase"], e["training"] or "-",
        f"{e['scenes_done']}/{e['scenes_total']}", f"{e['credits_spent']:g}",
        (e["last_error"] or "-")[:50]) for e in entries]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header) - 1)]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False))
                     + "  " + str(row[-1]))
    return "\n".join(lines)


def _held(lease: dict[str, Any] | None) -> str:
    if lease is None:
        return "-"
    state = f"{lease['left']:.0f}s left" if lease["left"] > 0 else "lapsed"
    return f"{lease['host']} pid {lease['pid']} ({state})"
