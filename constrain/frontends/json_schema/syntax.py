"""JSON text: the string and number terminals, and the whitespace policies."""

from __future__ import annotations

from ...automata._json_strings import JSON_STRING_REGEX
from ...automata.regex import syntax_terminals
from ...grammar.ir import Lit
from ...grammar.ir import RegexTerm as Regex
from ...errors import SchemaError

__all__ = ["BOUNDED_INDENT", "JSON_NUMBER_REGEX", "JSON_STRING_REGEX", "whitespace_regexes"]

JSON_NUMBER_REGEX = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_INT_REGEX = r"-?(?:0|[1-9][0-9]*)"
_INT_REGEX_FRAC = r"-?(?:0|[1-9][0-9]*)(?:\.0+)?"

# The same DFAs whatever the schema: kept when the caches of specs are cleared.
syntax_terminals(*(Regex(r) for r in (JSON_STRING_REGEX, JSON_NUMBER_REGEX, _INT_REGEX, _INT_REGEX_FRAC)),
                 *(Lit(w) for w in ("true", "false", "null")))


# The "bounded" policy: one space, or one line break and an indentation of at most this
# many spaces or tabs (json.dumps with indent=4 reaches it 16 levels deep).
BOUNDED_INDENT = 64


def whitespace_regexes(policy: str | int) -> tuple[str, str, str, str]:
    """Regexes of the whitespace a policy allows: (after ``{ [ , :``, before ``} ]``,
    before ``, :``, around the whole document as one non-empty run, or "" for none).

    * ``"bounded"`` (the default): nothing, one space, or one line break followed by at
      most :data:`BOUNDED_INDENT` spaces or tabs, after ``{ [ , :`` and before ``} ]``;
      none before ``,`` or ``:`` and none around the document, so the document ends at
      its closing character and a model cannot spend its budget on whitespace. Accepts
      what ``json.dumps`` writes, with or without ``indent=``.
    * ``"json"``: JSON's own, ``[ \\t\\n\\r]*`` wherever RFC 8259 allows it, the
      document's surroundings included (for checking documents written by anyone).
    * ``"compact"``: none at all.
    * an int N: at most N whitespace characters wherever JSON allows whitespace.
    """
    if policy == "bounded":
        ws = r"(?: |\r?\n[ \t]{0,%d})?" % BOUNDED_INDENT
        return ws, ws, "", ""
    if policy == "json":
        ws = r"[ \t\n\r]*"
        return ws, ws, ws, r"[ \t\n\r]+"
    if policy == "compact":
        return "", "", "", ""
    if isinstance(policy, int) and not isinstance(policy, bool) and policy >= 0:
        if not policy:
            return "", "", "", ""
        ws = r"[ \t\n\r]{0,%d}" % policy
        return ws, ws, ws, r"[ \t\n\r]{1,%d}" % policy
    raise SchemaError(f"whitespace must be 'bounded', 'json', 'compact' or an int >= 0, not {policy!r}", "")
