"""What a compiled JSON Schema grammar does with each notable keyword."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ReportEntry", "SchemaReport", "not_enforced"]


def not_enforced(pointer: str, keyword: str) -> str:
    """The warning for a keyword the grammar approximates (accepts more than it allows)."""
    return f"JSON Schema keyword {keyword!r} at {pointer or '/'} is not enforced"


@dataclass(frozen=True)
class ReportEntry:
    pointer: str
    keyword: str
    status: str  # 'enforced' | 'approximated' (accepts more) | 'narrowed' (accepts less) | 'ignored'
    note: str = ""


@dataclass
class SchemaReport:
    """What the compiled grammar does with each notable keyword."""

    entries: list[ReportEntry] = field(default_factory=list)

    def add(self, pointer: str, keyword: str, status: str, note: str = "") -> None:
        self.entries.append(ReportEntry(pointer, keyword, status, note))

    @property
    def approximated(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.status == "approximated"]

    @property
    def narrowed(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.status == "narrowed"]

    @property
    def ignored(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.status == "ignored"]

    @property
    def exact(self) -> bool:
        """True when no validity-changing keyword was approximated."""
        return not self.approximated
