"""Regular expressions for JSON Schema ``format`` values.

Each known format maps to a tuple of regex sources (Python ``re`` syntax, ASCII classes)
over the *decoded* string value; a value has the format when it fully matches every
regex of the tuple. The expressions follow the RFCs the JSON Schema specification cites
(RFC 3339 dates and times, RFC 3986 URIs, RFC 5321 mailboxes, RFC 1123 host names,
RFC 4122 UUIDs, RFC 4291 IPv6 text forms) closely enough to accept every typical value
that ``jsonschema``'s format checkers accept; dates are exact (month lengths, leap years).
"""

from __future__ import annotations

__all__ = ["FORMATS", "STANDARD_FORMATS", "format_regexes"]

_DAY31 = r"(?:0[1-9]|[12][0-9]|3[01])"
_DAY30 = r"(?:0[1-9]|[12][0-9]|30)"
_DAY28 = r"(?:0[1-9]|1[0-9]|2[0-8])"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
DATE = (
    r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-" + _DAY31 + r"|(?:0[469]|11)-" + _DAY30
    + r"|02-" + _DAY28 + r")|" + _LEAP_YEAR + r"-02-29)"
)
_OFFSET = r"(?:[zZ]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?" + _OFFSET
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


def format_regexes(name: str) -> tuple[str, ...] | None:
    """The regexes a value of format ``name`` must fully match, or None when unknown."""
    return FORMATS.get(name)
