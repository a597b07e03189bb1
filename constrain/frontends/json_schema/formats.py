"""Regular expressions for JSON Schema ``format`` values.

Each known format maps to a tuple of regex sources (Python ``re`` syntax, ASCII classes)
over the *decoded* string value; a value has the format when it fully matches every
regex of the tuple. The expressions follow the RFCs the JSON Schema specification cites
(RFC 3339 dates and times, RFC 3986 URIs, RFC 5321 mailboxes, RFC 1123 host names,
RFC 4122 UUIDs, RFC 4291 IPv6 text forms) closely enough to accept every typical value
that ``jsonschema``'s format checkers accept; dates are exact (month lengths, leap years),
and so are times (second 60 only where the time less its offset is 23:59 UTC).
:func:`format_terminals` gives the grammar's terminals, which narrow leap seconds.
"""

from __future__ import annotations

from ...grammar.ir import Terminal, Union_
from ...grammar.ir import RegexTerm as Regex

__all__ = ["CONTENT_BASE64", "FORMATS", "STANDARD_FORMATS", "format_regexes", "format_terminals"]

_DAY31 = r"(?:0[1-9]|[12][0-9]|3[01])"
_DAY30 = r"(?:0[1-9]|[12][0-9]|30)"
_DAY28 = r"(?:0[1-9]|1[0-9]|2[0-8])"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
DATE = (
    r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-" + _DAY31 + r"|(?:0[469]|11)-" + _DAY30
    + r"|02-" + _DAY28 + r")|" + _LEAP_YEAR + r"-02-29)"
)
_OFFSET = r"(?:[zZ]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_SECFRAC = r"(?:\.[0-9]+)?"


def _leap_second_times(offset_minutes: range | tuple[int, ...] = range(60)) -> str:
    """Times with second 60 (RFC 3339 section 5.7) whose offsets have their minutes in
    ``offset_minutes``: a leap second is 23:59:60 UTC, so the local time less the offset
    must be 23:59. For local hh:mm, offset +HH:MM needs (HH, MM) = (hh, mm + 1), or
    mm = 59 with (HH, MM) = (hh + 1 mod 24, 00); offset -HH:MM needs HH = 23 - hh and
    MM = 59 - mm; Z (as +00:00 and -00:00) only 23:59. With a fraction between the time
    and the offset, an automaton has to remember the local time while it reads it: one
    alternative per local time that has an offset (1,440 for every offset)."""
    times = []
    for hh in range(24):
        for mm in range(60):
            offsets = []
            if mm == 59:
                offsets.append(r"\+%02d:00" % ((hh + 1) % 24))
            elif mm + 1 in offset_minutes:
                offsets.append(r"\+%02d:%02d" % (hh, mm + 1))
            if 59 - mm in offset_minutes:
                offsets.append("-%02d:%02d" % (23 - hh, 59 - mm))
            if hh == 23 and mm == 59:
                offsets.append("[zZ]")
            if offsets:
                times.append("%02d:%02d:60%s(?:%s)" % (hh, mm, _SECFRAC, "|".join(offsets)))
    return "(?:" + "|".join(times) + ")"


_HMS = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:"
_TIME_NO_LEAP = _HMS + r"[0-5][0-9]" + _SECFRAC + _OFFSET
# Every leap second (a DFA of some 11,000 states, 0.1 s to build), and those whose offset
# is a whole quarter hour, as every time zone's has been since leap seconds began in
# 1972 (1,200 states, 10 ms): the grammar's.
_TIME_LEAP = _leap_second_times()
_TIME_LEAP_QUARTERS = _leap_second_times((0, 15, 30, 45))
# Second 60 at any time: a superset, for negation.
_TIME_LOOSE = _HMS + r"(?:[0-5][0-9]|60)" + _SECFRAC + _OFFSET
TIME = r"(?:" + _TIME_NO_LEAP + "|" + _TIME_LEAP + ")"
DATE_TIME = DATE + r"[tT]" + TIME

_DUR_SECOND = r"[0-9]+S"
_DUR_MINUTE = r"[0-9]+M(?:" + _DUR_SECOND + r")?"
_DUR_HOUR = r"[0-9]+H(?:" + _DUR_MINUTE + r")?"
_DUR_TIME = r"T(?:" + _DUR_HOUR + "|" + _DUR_MINUTE + "|" + _DUR_SECOND + ")"
_DUR_DAY = r"[0-9]+D"
_DUR_MONTH = r"[0-9]+M(?:" + _DUR_DAY + r")?"
_DUR_YEAR = r"[0-9]+Y(?:" + _DUR_MONTH + r")?"
_DUR_DATE = r"(?:" + _DUR_DAY + "|" + _DUR_MONTH + "|" + _DUR_YEAR + r")(?:" + _DUR_TIME + r")?"
DURATION = r"P(?:" + _DUR_DATE + "|" + _DUR_TIME + r"|[0-9]+W)"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = _OCTET + r"(?:\." + _OCTET + r"){3}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = r"(?:" + _H16 + ":" + _H16 + "|" + IPV4 + ")"


def _ipv6() -> str:
    # RFC 3986 section 3.2.2: the nine forms of IPv6address.
    h = _H16
    forms = [
        rf"(?:{h}:){{6}}{_LS32}",
        rf"::(?:{h}:){{5}}{_LS32}",
        rf"(?:{h})?::(?:{h}:){{4}}{_LS32}",
        rf"(?:(?:{h}:){{0,1}}{h})?::(?:{h}:){{3}}{_LS32}",
        rf"(?:(?:{h}:){{0,2}}{h})?::(?:{h}:){{2}}{_LS32}",
        rf"(?:(?:{h}:){{0,3}}{h})?::{h}:{_LS32}",
        rf"(?:(?:{h}:){{0,4}}{h})?::{_LS32}",
        rf"(?:(?:{h}:){{0,5}}{h})?::{h}",
        rf"(?:(?:{h}:){{0,6}}{h})?::",
    ]
    return "(?:" + "|".join(forms) + ")"


IPV6 = _ipv6()

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = _LABEL + r"(?:\." + _LABEL + r")*\.?"
_HOSTNAME_LENGTH = r"[^\x00]{1,253}"

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = _ATEXT + r"+(?:\." + _ATEXT + r"+)*" + r'|"(?:[^"\\\x00-\x1f]|\\[^\x00-\x1f])*"'
EMAIL = (
    r"(?:" + _LOCAL + r")@(?:" + HOSTNAME + r"|\[" + IPV4 + r"\]|\[IPv6:" + IPV6 + r"\])"
)

UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"

# RFC 3986 character classes.
_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED_SUB = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCHAR = r"(?:[" + _UNRESERVED_SUB + r":@]|" + _PCT + r")"
_QUERY = r"(?:" + _PCHAR + r"|[/?])*"
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*"
_USERINFO = r"(?:[" + _UNRESERVED_SUB + r":]|" + _PCT + r")*"
_REGNAME = r"(?:[" + _UNRESERVED_SUB + r"]|" + _PCT + r")*"
_HOST = r"(?:\[(?:" + IPV6 + r"|v[0-9A-Fa-f]+\.[" + _UNRESERVED_SUB + r":]+)\]|" + IPV4 + "|" + _REGNAME + ")"
_AUTHORITY = r"(?:" + _USERINFO + r"@)?" + _HOST + r"(?::[0-9]*)?"
_PATH_ABEMPTY = r"(?:/" + _PCHAR + r"*)*"
_PATH_ABSOLUTE = r"/(?:" + _PCHAR + r"+(?:/" + _PCHAR + r"*)*)?"
_PATH_ROOTLESS = _PCHAR + r"+(?:/" + _PCHAR + r"*)*"
_SEGMENT_NZ_NC = r"(?:[" + _UNRESERVED_SUB + r"@]|" + _PCT + r")+"
_PATH_NOSCHEME = _SEGMENT_NZ_NC + r"(?:/" + _PCHAR + r"*)*"
_HIER = r"(?://" + _AUTHORITY + _PATH_ABEMPTY + "|" + _PATH_ABSOLUTE + "|" + _PATH_ROOTLESS + r"|)"
URI = _SCHEME + ":" + _HIER + r"(?:\?" + _QUERY + r")?(?:#" + _QUERY + r")?"
_RELATIVE = (
    r"(?://" + _AUTHORITY + _PATH_ABEMPTY + "|" + _PATH_ABSOLUTE + "|" + _PATH_NOSCHEME + r"|)"
    + r"(?:\?" + _QUERY + r")?(?:#" + _QUERY + r")?"
)
URI_REFERENCE = r"(?:" + URI + "|" + _RELATIVE + ")"

# IRIs (RFC 3987): URIs that may also hold non-ASCII characters where unreserved ones go.
_UCS = "\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0010fffd"
IRI = URI.replace(_UNRESERVED_SUB, _UNRESERVED_SUB + _UCS)
IRI_REFERENCE = URI_REFERENCE.replace(_UNRESERVED_SUB, _UNRESERVED_SUB + _UCS)

# URI templates (RFC 6570): literals and {expressions}.
_VARCHAR = r"(?:[A-Za-z0-9_]|" + _PCT + ")"
_VARSPEC = _VARCHAR + r"(?:\.?" + _VARCHAR + r")*(?::[1-9][0-9]{0,3}|\*)?"
_EXPRESSION = r"\{[+#./;?&=,!@|]?" + _VARSPEC + r"(?:," + _VARSPEC + r")*\}"
_LITERAL = r"(?:[^\x00-\x20\"'%<>\\^`{|}\x7f]|" + _PCT + ")"
URI_TEMPLATE = r"(?:" + _LITERAL + "|" + _EXPRESSION + ")*"

# RFC 4648 section 4: groups of four, the last one padded (no line breaks).
BASE64 = r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"

JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
RELATIVE_JSON_POINTER = r"(?:0|[1-9][0-9]*)(?:#|" + JSON_POINTER + ")"

FORMATS: dict[str, tuple[str, ...]] = {
    "date": (DATE,),
    "time": (TIME,),
    "date-time": (DATE_TIME,),
    "duration": (DURATION,),
    "email": (EMAIL,),
    "ipv4": (IPV4,),
    "ipv6": (IPV6,),
    "hostname": (HOSTNAME, _HOSTNAME_LENGTH),
    "uuid": (UUID,),
    "uri": (URI,),
    "uri-reference": (URI_REFERENCE,),
    "iri": (IRI,),
    "iri-reference": (IRI_REFERENCE,),
    "uri-template": (URI_TEMPLATE,),
    "json-pointer": (JSON_POINTER,),
    "relative-json-pointer": (RELATIVE_JSON_POINTER,),
}


# Formats the specification defines; those without an entry in FORMATS cannot be enforced.
STANDARD_FORMATS = frozenset(
    """date-time date time duration email idn-email hostname idn-hostname ipv4 ipv6 uri
    uri-reference iri iri-reference uuid uri-template json-pointer relative-json-pointer
    regex""".split()
)


# Constraints of other keywords, carried as formats with names of this library's own
# ``$constrain:`` namespace (no schema's format): ``contentEncoding: base64`` in draft 7.
CONTENT_BASE64 = "$constrain:base64"
_CONTENT_FORMATS: dict[str, tuple[str, ...]] = {CONTENT_BASE64: (BASE64,)}


def format_regexes(name: str) -> tuple[str, ...] | None:
    """The regexes a value of format ``name`` must fully match, or None when unknown."""
    return FORMATS.get(name) or _CONTENT_FORMATS.get(name)


# Formats the grammar narrows: (what JSON may write with escapes, what only plain bytes
# may spell, a superset for negation).
_SPLIT = {
    "time": (_TIME_NO_LEAP, _TIME_LEAP_QUARTERS, _TIME_LOOSE),
    "date-time": tuple(DATE + r"[tT]" + t for t in (_TIME_NO_LEAP, _TIME_LEAP_QUARTERS, _TIME_LOOSE)),
}


def format_terminals(name: str, negated: bool = False) -> tuple[Terminal, ...] | None:
    """Terminals over JSON string contents that a string of format ``name`` must match
    (all of them); None when the format is unknown.

    Positive (``negated=False``): a subset of the format's language, equal to it but for
    times with a leap second, admitted where their offset is a whole quarter hour
    (``+05:45``, not ``+05:17``) and only in plain bytes (no ``\\u0036`` for ``6``):
    the offset check makes the automaton remember the local time, which every offset
    minute and every escape multiply. ``negated=True``: a superset, for ``not`` to
    subtract (second 60 at any time)."""
    split = _SPLIT.get(name)
    if split is not None:
        escaped, plain, loose = split
        if negated:
            return (Regex(loose, ascii=True, json_string=True),)
        return (Union_((Regex(escaped, ascii=True, json_string=True), Regex(plain, ascii=True))),)
    regexes = format_regexes(name)
    if regexes is None:
        return None
    return tuple(Regex(r, ascii=True, json_string=True) for r in regexes)
