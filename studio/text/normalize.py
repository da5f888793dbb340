"""English text normalisation: raw script text -> the words a TTS model should speak.

The acoustic models are trained on spelled-out English words, so every digit, symbol and
abbreviation has to become words before G2P runs: "$3.50" read by a G2P that has never seen
"$" comes out as silence or noise, and "Dr." left with its period would make the sentence
splitter cut "Dr. Smith" in two. The pipeline is

1. `fold_unicode`: accents folded to ASCII (NFKD, combining marks dropped), curly quotes and
   dashes made plain, scripts the English-only models cannot speak (CJK, Arabic, emoji...)
   dropped, and the few non-ASCII symbols the rules read ("£ € ¥ ¢ °") kept;
2. an ordered table of (regex, handler) rules, most specific first: a phone number or a date
   must be claimed before the generic "digits" and "range" rules see its pieces;
3. `_tidy`: whatever is still not a letter or one of ". , ! ? ; : ' -" is dropped, and the
   punctuation is cleaned into one mark per pause.

Only sentence periods survive: abbreviation periods are removed (and put back when the
abbreviation also ends the sentence), because the sentence splitter that runs next splits
on them. `normalize` never raises on a `str`: a handler that fails on some odd input leaves
its text for the later, simpler rules and logs a warning.

Choices: numbers use num2words' British-style "and" ("one hundred and third"); bare
four-digit numbers from 1100 to 2099 are read as years ("1984" -> "nineteen eighty-four",
"1500 people" -> "fifteen hundred people"); 0 is "oh" in phone numbers and clock times and
"zero" elsewhere; "a/b" between words is read "a or b"; all-caps tokens of 2-5 letters with
no vowel (or in a short list such as "FBI") are spelled out letter by letter.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from num2words import num2words

log = logging.getLogger(__name__)


class TextError(ValueError):
    """Text the studio cannot use: not a string, not a number where one is required, or
    nothing speakable left (the front-end raises it when `normalize` returns "")."""


def _re(pattern: str, flags: int = 0) -> re.Pattern:
    # ASCII classes: the handlers assume `\d` is 0-9 and `\w` is an English word character; other
    # scripts' digits and letters are the folding step's business (it drops them).
    return re.compile(pattern, flags | re.ASCII)


# --------------------------------------------------------------------------------------------
# 1. Unicode folding
# --------------------------------------------------------------------------------------------

# Characters NFKD leaves alone (or decomposes unhelpfully) that still have a plain reading.
_CHAR_MAP = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc`\u00b4", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2212", "-"),  # en dash stays a hyphen: "10–20"
    **dict.fromkeys("\u2014\u2015", " , "),  # an em dash is a pause
    "\u2044": "/",  # fraction slash
    "\u00a7": " section ",  # "§ 5"; "§§ 5-7" is made "sections" by a rule
    "\u00b6": " paragraph ",
    "\u2122": " ",  # trademark signs are not read
    "\u2120": " ",
    "\u00d7": "x",  # "2×" and "3×4" then reuse the ASCII multiplier rules
    "\u00f7": " divided by ",
    "\u00b1": " plus or minus ",
    "\u221a": " square root of ",
    "\u2248": " approximately ",
    "\u221e": " infinity ",
    **{ch: f" {name} " for ch, name in zip(
        "\u03b1\u03b2\u03b3\u03b4\u0394\u03b8\u03bb\u03c0\u03c3\u03a3\u03c6\u03c9\u03a9",
        "alpha beta gamma delta delta theta lambda pi sigma sigma phi omega omega".split())},
    "\u2264": " <= ",  # less than or equal to
    "\u2265": " >= ",
    "\u2260": " != ",
    "\u00df": "ss",
    "\u00e6": "ae",
    "\u00c6": "AE",
    "\u0153": "oe",
    "\u0152": "OE",
    "\u00f8": "o",
    "\u00d8": "O",
    "\u0111": "d",
    "\u0110": "D",
    "\u0142": "l",
    "\u0141": "L",
    "\u00fe": "th",
    "\u00de": "Th",
    "\u00f0": "d",
    "\u00d0": "D",
    "\u0131": "i",
    "\u014b": "ng",
}
# Non-ASCII symbols the rules below read; everything else non-ASCII goes.
_KEPT_SYMBOLS = frozenset("£€¥¢°₹")


@functools.lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if ch in _CHAR_MAP:
        return _CHAR_MAP[ch]
    if ch.isascii():
        return ch if ch.isprintable() else " "  # tabs, newlines, NUL: a word break at most
    if ch in _KEPT_SYMBOLS:
        return ch
    decomposed = unicodedata.normalize("NFKD", ch)
    if "\u2044" in decomposed:
        # Vulgar fractions: "2½" must become "2 1/2", not "21/2".
        return " " + decomposed.replace("\u2044", "/") + " "
    if decomposed != ch:
        return "".join(_fold_char(c) for c in decomposed)
    if unicodedata.category(ch) in ("Mn", "Mc", "Me", "Cf"):
        return ""  # accents and zero-width joiners sit inside words: dropping them keeps the word
    return " "  # a letter of another script, an emoji: never glue its neighbours together


# "x²", "mc²", "5 m³": a power, after a letter or two, a digit or a bracket ("word²" is a footnote's mark)
_SQUARED = _re("(?<=[\\w)])(?<![A-Za-z]{3})([\u00b2\u00b3])")


def fold_unicode(text: str) -> str:
    """Fold `text` to ASCII and "£€¥¢°": "café" -> "cafe", "“hi”" -> '"hi"', "日本" -> "  "."""
    return "".join(_fold_char(ch) for ch in text)


def unreadable(text: str, limit: int = 5) -> list[str]:
    """What `fold_unicode` drops that a reader would miss: runs of letters, digits and symbols of
    other scripts and emoji ("Hi 🎉, 日本語!" -> ["🎉", "日本語"]), at most `limit`, each once.
    Other scripts' punctuation and spaces are not listed: dropping them loses nothing."""
    runs: list[str] = []
    current = ""
    for ch in text + " ":
        dropped = not ch.isascii() and _fold_char(ch).strip() == ""
        if dropped and unicodedata.category(ch)[0] in "LNS":
            current += ch
        elif dropped and current and unicodedata.category(ch) in ("Mn", "Me", "Cf", "Sk"):
            current += ch  # emoji modifiers, variation selectors, zero-width joiners
        else:
            if current and current not in runs:
                runs.append(current)
            current = ""
        if len(runs) >= limit:
            break
    return runs


def unreadable_warning(text: str) -> str | None:
    """A sentence for the user naming what `unreadable` finds in `text`, or None."""
    runs = unreadable(text)
    if not runs:
        return None
    shown = ", ".join(run if len(run) <= 12 else run[:12] + "..." for run in runs)
    return f"left out what the English voices cannot read: {shown}"


# --------------------------------------------------------------------------------------------
# 2. Numbers as words
# --------------------------------------------------------------------------------------------

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Past this many digits num2words runs out of scale names (and nobody says them): read digits.
_MAX_CARDINAL_DIGITS = 15


def say_digits(digits: str, zero: str = "zero") -> str:
    """Read a digit string one digit at a time: "4057" -> "four zero five seven"."""
    return " ".join(zero if d == "0" else _DIGIT_WORDS[int(d)] for d in digits if d.isdigit())


def _words(n: int, to: str = "cardinal") -> str:
    # num2words puts commas between groups ("one million, two hundred..."); they would read as
    # pauses in the middle of a number.
    return num2words(n, lang="en", to=to).replace(",", "")


def cardinal(n: int) -> str:
    """42 -> "forty-two", 103 -> "one hundred and three"; huge numbers are read digit by digit."""
    if len(str(abs(n))) > _MAX_CARDINAL_DIGITS:
        return ("minus " if n < 0 else "") + say_digits(str(abs(n)))
    return _words(n)


def ordinal(n: int) -> str:
    """22 -> "twenty-second"."""
    if len(str(n)) > _MAX_CARDINAL_DIGITS:
        return say_digits(str(n))
    return _words(n, to="ordinal")


def year(n: int) -> str:
    """Read `n` as a year: 1984 -> "nineteen eighty-four", 2005 -> "two thousand and five"."""
    return _words(n, to="year") if 1000 <= n <= 9999 else cardinal(n)


def _is_year_like(digits: str) -> bool:
    return len(digits) == 4 and 1100 <= int(digits) <= 2099


_NUMBER_STRING = _re(r"(-?)(\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d+))?")


def spell_number(number: str) -> str:
    """Spell one written number: "42", "-5", "1,000,000", "3.14", ".5", "007".

    Raises:
        TextError: `number` is not a plain written number.
    """
    m = _NUMBER_STRING.fullmatch(number.strip())
    if m is None or not (m.group(2) or m.group(3)):
        raise TextError(f"not a number: {number!r}")
    sign, whole, frac = m.group(1), m.group(2).replace(",", ""), m.group(3)
    if len(whole) > 1 and whole.startswith("0") and frac is None:
        words = say_digits(whole)  # "007", zip codes: the zeros are said
    elif len(whole) > _MAX_CARDINAL_DIGITS:
        words = say_digits(whole)  # also keeps int() under Python's 4300-digit limit
    elif whole:
        words = cardinal(int(whole))
    else:
        words = ""
    if frac is not None:
        words = f"{words} point {say_digits(frac)}".strip()
    return f"minus {words}" if sign else words


# --------------------------------------------------------------------------------------------
# 3. Rules: helpers shared by the handlers
# --------------------------------------------------------------------------------------------

# A written number: "5", "1,000,000", "3.14".
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?"
# A quantity: an optional minus (not a hyphen after a word) and an optional range "10-20".
_QTY = rf"(?<![\w.,/])-?{_NUM}(?:-{_NUM})?"

# Capitalised words that start sentences far more often than they are names or parts of one.
# An abbreviation's period counts as a sentence end only before one of these (or at the end of
# the text, or of a line): a false split ("the U S. Army") breaks the prosody of both halves,
# while a missed one only loses a pause.
_SENTENCE_STARTERS = frozenset(
    "The A An I I'm I'll I've I'd He She It It's We They You This That These Those There"
    " There's Then But And Or So Yet My His Her Our Their Its Your In On At If When While"
    " After Before As For From With Without To By Of What Who Why How Where Which Is Are Was"
    " Were Do Does Did Can Could Will Would Should Shall May Might Must Has Have Had Not No"
    " Yes Now Today Tomorrow Yesterday Some All Many Most Each Every One Also Still Please"
    " Let Thank Thanks Oh Well However Meanwhile Later Finally First Next".split()
)
_NEXT_WORD = _re(r"\s+[\"'(]*([A-Z][A-Za-z']*)")
_TEXT_OR_LINE_END = _re(r"[ \t]*(?:$|\n)")


def _ends_sentence(m: re.Match) -> bool:
    """Whether a period consumed by `m` also ends its sentence."""
    if not m.group(0).endswith("."):
        return False
    if _TEXT_OR_LINE_END.match(m.string, m.end()):
        return True
    following = _NEXT_WORD.match(m.string, m.end())
    return following is not None and following.group(1) in _SENTENCE_STARTERS


def _name_follows(m: re.Match) -> bool:
    following = _NEXT_WORD.match(m.string, m.end())
    return following is not None and following.group(1) not in _SENTENCE_STARTERS


def _previous_word(m: re.Match) -> str | None:
    """The word before `m`, or None at the start of a sentence."""
    before = m.string[max(0, m.start() - 64) : m.start()].split()
    if not before or before[-1][-1] in ".!?":
        return None
    return before[-1]


def _pad(m: re.Match, words: str) -> str:
    # "MP3" -> "MP three", but "5-year-old" keeps its hyphen: spaces only against letters/digits.
    s = m.string
    before = " " if m.start() > 0 and s[m.start() - 1].isalnum() else ""
    after = " " if m.end() < len(s) and s[m.end()].isalnum() else ""
    return before + words + after


def _match_case(source: str, spoken: str) -> str:
    if source[:1].isupper():
        return spoken[:1].upper() + spoken[1:]
    return spoken[:1].lower() + spoken[1:]


def _say_quantity(qty: str) -> tuple[str, bool]:
    """Spell "5", "-5", "1.5" or the range "10-20"; also say whether it is exactly one."""
    negative = qty.startswith("-")
    low, _, high = qty[1:].partition("-") if negative else qty.partition("-")
    words = spell_number(low)
    if high:
        words = f"{words} to {spell_number(high)}"
    if negative:
        words = f"minus {words}"
    return words, qty == "1"


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "o"):
        return noun[:-1] + "ies"
    return noun + "s"


# --------------------------------------------------------------------------------------------
# 4. Rule handlers, grouped as they run
# --------------------------------------------------------------------------------------------

# --- URLs and e-mail addresses: before anything reads their dots, digits and "@" ------------

_URL_SYMBOLS = {".": "dot", "/": "slash", "@": "at", "-": "dash", "_": "underscore", ":": "colon"}
_URL_PIECE = _re(r"[A-Za-z]+|\d+|[./@_:-]")
_URL_END = r"[^\s<>\"'.,!?;:()\[\]]"  # a URL never ends on the sentence's punctuation
_TLDS = "com|org|net|edu|gov|io|ai|dev|app|co|uk|us|tv|fm|me|info|biz"

# Lengths are bounded (as they are in real addresses) so that a long run like "a.a.a.a..." costs
# linear, not quadratic, time: every start position would otherwise scan to its end.
_LABEL = r"[A-Za-z0-9-]{1,63}"
_EMAIL = _re(rf"[A-Za-z0-9._%+-]{{1,64}}@{_LABEL}(?:\.{_LABEL}){{1,8}}")
_URL = _re(
    rf"\b(?:https?://|www\.)[^\s<>\"]{{0,500}}{_URL_END}"
    rf"|\b{_LABEL}(?:\.{_LABEL}){{0,8}}\.(?:{_TLDS})\b(?:/[^\s<>\"]{{0,500}}{_URL_END})?",
    re.IGNORECASE,
)


def _say_address(address: str) -> str:
    address = re.sub(r"^[a-z]+://", "", address, flags=re.IGNORECASE)
    address = re.split(r"[?#]", address)[0].rstrip("/")  # queries and fragments are not read out
    spoken = []
    for piece in _URL_PIECE.findall(address):
        if piece in _URL_SYMBOLS:
            spoken.append(_URL_SYMBOLS[piece])
        elif piece.isdigit():
            spoken.append(say_digits(piece))
        elif piece.lower() == "www":
            spoken.append("w w w")
        else:
            spoken.append(piece)
    return " ".join(spoken)


def _say_url(m: re.Match) -> str:
    return _pad(m, _say_address(m.group(0)))


# --- Dates: before phone numbers, ranges ("2024-01-05") and fractions ("01/05/2024") ---------

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_MONTH_BY_ABBR = {m[:3]: m for m in _MONTHS} | {"Sept": "September"}
_MONTH_NAME = "|".join(_MONTHS)
_MONTH_ABBR = "Sept|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_MONTH = rf"(?P<month>{_MONTH_NAME}|(?:{_MONTH_ABBR})\b\.?)"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?(?!\d)"
_YEAR = r"(?P<year>\d{4})(?!\d)"


def _month(text: str) -> str:
    text = text.rstrip(".")
    return text if text in _MONTHS else _MONTH_BY_ABBR[text]


def _say_two_digit_year(yy: str) -> str:
    return f"oh {_DIGIT_WORDS[int(yy)]}" if yy.startswith("0") else cardinal(int(yy))


def _say_date(month: int, day: int, year_text: str | None) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    spoken = f"{_MONTHS[month - 1]} {ordinal(day)}"
    if year_text and len(year_text) == 4:
        spoken += f", {year(int(year_text))}"
    elif year_text:
        spoken += f", {_say_two_digit_year(year_text)}"
    return spoken


_ISO_DATE = _re(r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?![\w-])")
_US_NUMERIC_DATE = _re(r"(?<![\w/.])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\w/])")
_MONTH_DAY = _re(rf"\b{_MONTH}\s+(?:{_DAY}(?:,?\s+{_YEAR})?|(?P<lone_year>\d{{4}})(?!\d))")
_DAY_MONTH = _re(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?")


def _say_iso_date(m: re.Match) -> str:
    return _say_date(int(m.group(2)), int(m.group(3)), m.group(1)) or m.group(0)


def _say_us_numeric_date(m: re.Match) -> str:
    return _say_date(int(m.group(1)), int(m.group(2)), m.group(3)) or m.group(0)


def _say_month_day(m: re.Match) -> str:
    month = _month(m.group("month"))
    if m.group("day") is None:  # "Jan 2024"
        return f"{month} {year(int(m.group('lone_year')))}"
    spoken = _say_date(_MONTHS.index(month) + 1, int(m.group("day")), m.group("year"))
    return spoken or m.group(0)


def _say_day_month(m: re.Match) -> str:
    day = int(m.group("day"))
    if not 1 <= day <= 31:
        return m.group(0)
    spoken = f"{ordinal(day)} of {_month(m.group('month'))}"
    if (_previous_word(m) or "").lower() != "the":  # "on the 5th of May" has its "the" already
        spoken = "the " + spoken
    if m.group("year"):
        spoken += f", {year(int(m.group('year')))}"
    return spoken


# --- Phone numbers: digit by digit, a comma (pause) between groups --------------------------

_PHONE = _re(
    r"""(?<![\w+])(?:
        (?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}    # North American
      | \+\d{1,3}(?:[\s.-]\d{1,4}){2,5}                                 # international
      | [2-9]\d{2}-\d{4}                                                # local "555-1234"
    )(?![\w-])""",
    re.VERBOSE,
)


# Three or more digit groups joined by hyphens are a code, not a range: "978-3-16-148410-0"
# (an ISBN), "4-2-1", a part number. Each group is read digit by digit, a pause between groups.
_DIGIT_CHAIN = _re(r"(?<![\w.,-])\d+(?:-\d+){2,}(?![\w-]|\.\d)")


# "call 911", "dial 999", "call 5551234": a number dialled is read digit by digit, when it is an
# emergency or service number or as long as a phone number ("called 100 people" is a count)
_DIALLED = _re(
    r"(?i:\b(?:call|dial|ring|phone|text)(?:ed|ing|s)?\s+)(911|999|112|111|000|101|311|411|\d{7,11})\b"
    r"(?![-.,/]?\d|:)"
)
# "the 2024/25 season", "FY2023", "FY 24", "FY'24": years of a season or a fiscal year
_SEASON = _re(r"(?<![\w./])((?:19|20)\d\d)/(\d\d)(?![\w/]|\.\d)")
_FISCAL_YEAR = _re(r"\b(FY|CY|AY)\s?'?(\d{4}|\d{2})\b")


_US_STATES = dict(zip(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR"
    " PA RI SC SD TN TX UT VT VA WA WV WI WY".split(),
    ["Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware", "D C", "Florida",
     "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky", "Louisiana", "Maine",
     "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska", "Nevada",
     "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio", "Oklahoma",
     "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota", "Tennessee", "Texas", "Utah",
     "Vermont", "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming"],
))  # fmt: skip
# "Springfield, IL 62704(-1234)": a state and its ZIP code, read digit by digit
_STATE_ZIP = _re(rf"(?<=, )({'|'.join(_US_STATES)})\s+(\d{{5}})(?:-(\d{{4}}))?(?![\w-])")  # after "City, "
_PO_BOX = _re(r"\bP\.?\s?O\.?\s+(?=Box\b)", re.IGNORECASE)


def _say_state_zip(m: re.Match) -> str:
    spoken = f"{_US_STATES[m.group(1)]} {say_digits(m.group(2))}"
    return spoken + (f", {say_digits(m.group(3))}" if m.group(3) else "")


def _say_dialled(m: re.Match) -> str:
    return m.group(0)[: m.start(1) - m.start(0)] + say_digits(m.group(1), zero="oh")


def _say_season(m: re.Match) -> str:
    return _pad(m, f"{year(int(m.group(1)))} to {cardinal(int(m.group(2)))}")


def _say_fiscal_year(m: re.Match) -> str:
    digits = m.group(2)
    spoken = year(int(digits)) if len(digits) == 4 else _say_two_digit_year(digits)
    return _pad(m, f"{' '.join(m.group(1))} {spoken}")


def _say_phone(m: re.Match) -> str:
    groups = ", ".join(say_digits(g, zero="oh") for g in re.findall(r"\d+", m.group(0)))
    return ("plus " + groups) if m.group(0).startswith("+") else groups


# --- Clock times --------------------------------------------------------------------------

_AMPM = r"(?P<ampm>[aApP]\.\s?[mM]\.?|[aApP][mM](?![A-Za-z]))"
_CLOCK = _re(rf"(?<![\w:.])(\d{{1,2}}):(\d{{2}})(?::(\d{{2}}))?(?:\s?{_AMPM})?(?![\w:])")
_HOUR_AMPM = _re(rf"(?<![\w:.])(\d{{1,2}})\s?{_AMPM}(?!\w)")


# "9 a.m.-5 p.m.", "9am - 5pm": the dash between two times is "to"
_TIME_RANGE_DASH = _re(
    r"(?<![A-Za-z])([aApP]\.?\s?[mM]\.?)\s?-\s?(?=\d{1,2}(?::\d{2})?\s?[aApP]\.?\s?[mM](?![A-Za-z]))"
)
_WEEKDAYS = {"mon": "Monday", "tue": "Tuesday", "tues": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
             "thur": "Thursday", "thurs": "Thursday", "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}
_DAY_ABBR = "Mon|Tues|Tue|Wed|Thurs|Thur|Thu|Fri|Sat|Sun"
_WEEKDAY_RANGE = _re(rf"\b({_DAY_ABBR})\.?\s?-\s?({_DAY_ABBR})\b\.?")  # "Mon-Fri"
_CLOCK_RANGE_DASH = _re(r"(?<=\d:\d\d)\s?-\s?(?=\d{1,2}:\d\d(?!\d))")  # "9:00-17:00": "to"
_MONTH_RANGE = _re(rf"\b({_MONTH_ABBR})\.?\s?-\s?({_MONTH_ABBR})\b\.?")  # "Jan-Mar"
# "Mon., Tue. and Wed.", "Fri. 5 May": a weekday cut short, with its period, before a comma, a
# date or a conjunction, or after "on", "by", "until" ... (not "Sun." alone: "The Sun.")
_WEEKDAY_ABBR = _re(
    rf"\b({_DAY_ABBR})\.(?=,|\s+(?:\d|{_MONTH_NAME}|(?:{_MONTH_ABBR})\b|(?:and|or|to|through|thru)\b))"
    rf"|(\b(?:on|by|until|till|from|before|after|every|next|last|through) )({_DAY_ABBR})\."
)


def _say_time_range_dash(m: re.Match) -> str:
    return m.group(1) + " to "


def _say_month_range(m: re.Match) -> str:
    spoken = f"{_MONTH_BY_ABBR[m.group(1)]} to {_MONTH_BY_ABBR[m.group(2)]}"
    return spoken + "." if m.group(0).endswith(".") and _ends_sentence(m) else spoken


def _say_weekday(m: re.Match) -> str:
    if m.group(1):
        return _WEEKDAYS[m.group(1).lower()]
    day = _WEEKDAYS[m.group(3).lower()]  # "by Fri." ends a sentence unless a comma or a lower-case word follows
    ends = _ends_sentence(m) or re.match(r"\s+[A-Z0-9]", m.string[m.end() :]) is not None
    return m.group(2) + day + ("." if ends else "")


def _say_weekday_range(m: re.Match) -> str:
    spoken = f"{_WEEKDAYS[m.group(1).lower()]} to {_WEEKDAYS[m.group(2).lower()]}"
    return spoken + "." if _ends_sentence(m) else spoken


def _say_ampm(m: re.Match) -> str:
    # "a m" would be read as the article ("uh em") and "AM" is "am" at a sentence's end; the
    # hyphenated letters are "ay-em" and "pee-em" wherever they stand.
    spoken = f"{m.group('ampm')[0].lower()}-m"
    return spoken + "." if _ends_sentence(m) else spoken


def _say_digit_chain(m: re.Match) -> str:
    return _pad(m, ", ".join(say_digits(g) for g in m.group(0).split("-")))


def _say_clock(m: re.Match) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 24 or minute > 59 or (m.group("ampm") and not 1 <= hour <= 12):
        return m.group(0)
    spoken = cardinal(hour)
    if minute == 0 and not m.group("ampm"):
        # "ten o'clock", but a 24-hour "14:00" is "fourteen hundred" ("5:00 o'clock" has its own)
        if not re.match(r"\s*o'?clock\b", m.string[m.end() :], re.IGNORECASE):
            spoken += " o'clock" if 1 <= hour <= 12 else " hundred"
    elif minute:
        spoken += f" oh {cardinal(minute)}" if minute < 10 else f" {cardinal(minute)}"
    if m.group(3) and int(m.group(3)):
        seconds = int(m.group(3))
        spoken += f" and {cardinal(seconds)} second{'s' if seconds != 1 else ''}"
    if m.group("ampm"):
        spoken += " " + _say_ampm(m)
    return _pad(m, spoken)


def _say_hour_ampm(m: re.Match) -> str:
    hour = int(m.group(1))
    if not 1 <= hour <= 12:
        return m.group(0)
    return _pad(m, f"{cardinal(hour)} {_say_ampm(m)}")


# --- Abbreviations ------------------------------------------------------------------------

# Titles stand before a name, so their period never ends a sentence.
_TITLES = {
    "mr": "Mister", "mrs": "Missus", "ms": "Miz", "prof": "Professor", "gen": "General",
    "capt": "Captain", "lt": "Lieutenant", "sgt": "Sergeant", "col": "Colonel",
    "gov": "Governor", "sen": "Senator", "rev": "Reverend", "hon": "Honorable",
    "mt": "Mount", "ft": "Fort",
}  # fmt: skip
# Mr/Mrs/Ms/Prof mean nothing else; the rest only count as titles when a name follows
# ("Gen. Patton", but "Gen Z").
_TITLE = _re(
    r"\b(?:Mrs|Mr|Ms|Prof|MRS|MR|MS|PROF)\.|\b(?:Mrs|Mr|Ms)(?=\s+[A-Z])"
    r"|\b(?:Gen|Capt|Lt|Sgt|Col|Gov|Sen|Rev|Hon|Mt|Ft)\.(?=\s+[A-Z])"
)
# These follow a name or end a list, so their period may also end the sentence.
_TRAILING = {
    "jr": "Junior", "sr": "Senior", "inc": "Incorporated", "ltd": "Limited",
    "corp": "Corporation", "co": "Company", "bros": "Brothers", "ave": "Avenue",
    "blvd": "Boulevard", "rd": "Road", "phd": "P H D",
    **{abbr.lower(): month for abbr, month in _MONTH_BY_ABBR.items()},
}  # fmt: skip
_TRAILING_RE = _re(
    r"\b(?:Jr|Sr|Inc|Ltd|Corp)\b\.?|\bPh\.?D\b\.?"
    rf"|\b(?:Co|Bros|Ave|Blvd|Rd|{_MONTH_ABBR})\."
)
_LATIN = {
    "etc": "et cetera", "vs": "versus", "approx": "approximately", "dept": "department",
    "eg": "for example", "ie": "that is", "aka": "also known as", "ok": "okay",
}  # fmt: skip
_LATIN_RE = _re(
    r"\b(?:etc|vs|approx|dept|aka)\b\.?|\be\.\s?g\b\.?|\bi\.\s?e\b\.?|\ba\.\s?k\.\s?a\b\.?|\bo\.\s?k\b\.?",
    re.IGNORECASE,
)
# Words of a reference, abbreviated before a number ("Fig. 3", "pp. 12-15", "Vol. II").
_REFERENCES = {
    "fig": "figure", "figs": "figures", "p": "page", "pp": "pages", "vol": "volume",
    "vols": "volumes", "ch": "chapter", "chap": "chapter", "sec": "section", "eq": "equation",
    "art": "article", "rte": "route", "hwy": "highway", "apt": "apartment", "ste": "suite",
    "rm": "room", "bldg": "building", "ext": "extension", "tel": "telephone",
}  # fmt: skip
_REFERENCE = _re(
    r"\b(?:[Ff]igs?|pp?|[Vv]ols?|[Cc]hap|[Cc]h|[Ss]ec|[Ee]q|[Aa]rt|[Rr]te|[Hh]wy|[Aa]pt|[Ss]te|[Rr]m|[Bb]ldg"
    r"|[Ee]xt|[Tt]el)\.\s*(?=\d|[IVX]+\b)"
)
# Words cut short with a period that is no sentence end when a number follows ("No. 5", "est. 1990")
_ABBREVIATED_WORDS = frozenset(
    [*_TITLES, *_TRAILING, *_LATIN, *_REFERENCES]
    + "no nos est ca circa ref ed eds dr st op cit ibid fl cf sq yr yrs".split()
    + [*_WEEKDAYS]
)
_DR_ST = _re(r"\b(?:Dr|St)\b\.?|\b(?:dr|st|DR|ST)\.")
_NUMBER_SIGN = _re(r"\b[Nn]os?\.\s*(?=\d)|\bNo(?=\d)|#\s*(?=\d)")
_AMPM_ALONE = _re(r"\b(?P<ampm>[aApP]\.\s?[mM]\.?)(?![A-Za-z])")  # "am" alone is a verb
_DOTTED_CAPITALS = _re(r"\b[A-Z](?:\.[A-Z])+\b\.?")
_INITIAL = _re(r"\b([A-HJ-Z])\.(?=\s+[A-Z])")  # not "I.": "So did I. Then..." ends a sentence


def _expander(table: dict[str, str], may_end_sentence: bool) -> Callable[[re.Match], str]:
    def expand(m: re.Match) -> str:
        key = re.sub(r"[.\s]", "", m.group(0)).lower()
        spoken = _match_case(m.group(0), table[key])
        return spoken + "." if may_end_sentence and _ends_sentence(m) else spoken

    return expand


def _say_dr_st(m: re.Match) -> str:
    word = m.group(0).rstrip(".").lower()
    before = _previous_word(m)
    after_place = before is not None and (before[0].isdigit() or before[0].isupper())
    before_name = _name_follows(m)
    if word == "dr":
        place = not before_name and after_place  # "Sunset Dr." (else: "Dr. Who", "the dr.")
        spoken = "drive" if place else "doctor"
    else:
        place = not before_name or bool(before and before[0].isdigit())  # "5th St. Mary..."
        spoken = "street" if place else "saint"
    spoken = _match_case(m.group(0), spoken)
    return spoken + "." if place and _ends_sentence(m) else spoken


def _say_reference(m: re.Match) -> str:
    key = m.group(0).rstrip(". \t").lower()
    return _match_case(m.group(0), _REFERENCES[key]) + " "


def _say_number_sign(m: re.Match) -> str:
    word = "numbers " if m.group(0)[:3].lower() == "nos" else "number "
    return _pad(m, word.capitalize() if _previous_word(m) is None else word)


def _say_dotted_capitals(m: re.Match) -> str:
    spoken = " ".join(re.findall(r"[A-Z]", m.group(0)))
    return spoken + "." if _ends_sentence(m) else spoken


def _say_initial(m: re.Match) -> str:
    if _name_follows(m):  # "John F. Kennedy", "J. K. Rowling"
        return m.group(1)
    return m.group(0)  # "plan B. Then": a real sentence end


# --- Money, percentages, degrees, units ---------------------------------------------------

_CURRENCIES = {  # symbol: (one, many, one hundredth, many hundredths)
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", None, None),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_SCALES = {
    "k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion",
    "t": "trillion", "tn": "trillion",
}  # fmt: skip
_MONEY = _re(
    rf"(?P<neg>(?<![\w.])-)?(?P<cur>[$£€¥₹])\s?(?P<amount>{_NUM})"
    rf"(?:-[$£€¥₹]?(?P<high>{_NUM}))?"  # "$10-20", "$10-$20"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion)\b|(?P<abbr>bn|mn|tn|[kKmMbBtT])\b)?"
)
_CENTS = _re(rf"(?<![\w.,])({_NUM})\s?¢")


def _say_money(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[m.group("cur")]
    amount, high = m.group("amount"), m.group("high")
    scale = m.group("scale") or (m.group("abbr") and _SCALES[m.group("abbr").lower()])
    whole, _, frac = amount.replace(",", "").partition(".")
    if scale or high:  # "$1.5 million", "$10-20": read as numbers, the unit goes last
        spoken = spell_number(amount) + (f" to {spell_number(high)}" if high else "")
        spoken += f" {scale} {many}" if scale else f" {many}"
    elif frac and len(frac) <= 2 and sub_one:  # "$3.50": dollars and cents
        cents = int(frac.ljust(2, "0"))
        parts = []
        if whole.strip("0") or not cents:  # "$0.50" is just "fifty cents"
            parts.append(f"{spell_number(whole or '0')} {one if whole == '1' else many}")
        if cents:
            parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
        spoken = " and ".join(parts)
    elif frac:
        spoken = f"{spell_number(amount)} {many}"
    else:
        spoken = f"{spell_number(whole)} {one if whole == '1' else many}"
    if m.group("neg"):
        spoken = "minus " + spoken
    return _pad(m, spoken)


_CURRENCY_CODES = {
    "USD": ("US dollar", "US dollars"), "EUR": ("euro", "euros"), "GBP": ("pound", "pounds"),
    "JPY": ("yen", "yen"), "INR": ("rupee", "rupees"), "CAD": ("Canadian dollar", "Canadian dollars"),
    "AUD": ("Australian dollar", "Australian dollars"), "CHF": ("Swiss franc", "Swiss francs"),
    "CNY": ("yuan", "yuan"),
}  # fmt: skip
_CODES = "|".join(_CURRENCY_CODES)
_CODE_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
# "USD 5", "5 USD", "EUR 1.2m": an ISO code before or after the amount
_CURRENCY_CODE = _re(
    rf"\b(?P<pre>{_CODES})\s?(?P<a>{_NUM})(?:\s?(?P<s1>thousand|million|billion|[kmb]n?)\b)?"
    rf"|(?<![\w.,])(?P<b>{_NUM})(?:\s?(?P<s2>thousand|million|billion|[kmb]n?))?\s?(?P<post>{_CODES})\b",
    re.IGNORECASE,
)


def _say_currency_code(m: re.Match) -> str:
    code = (m["pre"] or m["post"]).upper()
    if not (m["pre"] or m["post"]).isupper():
        return m.group(0)  # "eur", "usd": not written as a code
    amount, scale = m["a"] or m["b"], m["s1"] or m["s2"]
    one, many = _CURRENCY_CODES[code]
    symbol = _CODE_SYMBOLS.get(code)
    if symbol:  # read as "$3.50" is ("three dollars and fifty cents"), naming the dollar
        written_scale = "" if not scale else (" " + scale if len(scale) > 2 else scale)  # "$1.2m", "$1 million"
        spoken = _MONEY.sub(_say_money, f"{symbol}{amount}{written_scale}").strip()
        if code == "USD":
            spoken = re.sub(r"\b(dollars?)\b", r"US \1", spoken, count=1)
        return _pad(m, spoken)
    whole, _, frac = amount.replace(",", "").partition(".")
    if len(frac) == 2 and not scale:  # "CHF 3.50": "three Swiss francs fifty"
        return _pad(m, f"{spell_number(whole)} {one if whole == '1' else many} {cardinal(int(frac))}")
    spoken = spell_number(amount)
    if scale:
        spoken += " " + _SCALES.get(scale.lower(), scale.lower())
    return _pad(m, f"{spoken} {one if amount == '1' and not scale else many}")


def _say_cents(m: re.Match) -> str:
    return _pad(m, f"{spell_number(m.group(1))} cent{'' if m.group(1) == '1' else 's'}")


_PERCENT = _re(rf"({_QTY})\s?%")
_DEGREES = _re(rf"({_QTY})\s?°\s?([CFK](?![A-Za-z]))?")
_DEGREE_SCALES = {"C": "celsius", "F": "fahrenheit", "K": "kelvin"}


def _say_percent(m: re.Match) -> str:
    return _pad(m, _say_quantity(m.group(1))[0] + " percent")


def _say_degrees(m: re.Match) -> str:
    spoken, is_one = _say_quantity(m.group(1))
    spoken += " degree" if is_one else " degrees"
    if m.group(2):
        spoken += " " + _DEGREE_SCALES[m.group(2)]
    return _pad(m, spoken)


_UNITS = {  # written: (one, many); a few common ones, case-sensitive ("MB" is not "mb")
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"), "ft": ("foot", "feet"), "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"),
    "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"),
    "secs": ("second", "seconds"), "min": ("minute", "minutes"), "mins": ("minute", "minutes"),
    "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "tsp": ("teaspoon", "teaspoons"), "tbsp": ("tablespoon", "tablespoons"),
    "kW": ("kilowatt", "kilowatts"), "kWh": ("kilowatt hour", "kilowatt hours"),
    "V": ("volt", "volts"), "W": ("watt", "watts"), "L": ("liter", "liters"),
    "mAh": ("milliamp hour", "milliamp hours"), "pts": ("points", "points"),
}  # fmt: skip
_ATTACHED_ONLY = {"V", "W", "L"}  # "a 9V battery", but "5 W" may be "5 West": only with no space
# A quantity that describes the next noun takes the unit in the singular: "a 5 km run", "the
# 100m dash", "a 5-km run". After "a"/"an" it always does; after another determiner only when a
# noun seems to follow (a lower-case word that is not one of these: "the 5 km were hard").
_ARTICLES = {"a", "an"}
_DETERMINERS = {"the", "this", "that", "each", "every", "my", "your", "his", "her", "its", "our", "their"}
_NOT_A_NOUN = {
    "of", "in", "on", "at", "to", "from", "for", "and", "or", "but", "nor", "is", "are", "was", "were", "be",
    "been", "away", "long", "wide", "high", "tall", "deep", "old", "ago", "later", "per", "each", "with", "by",
    "than", "more", "less", "apart", "off", "up", "down", "into", "over", "under", "behind", "ahead", "left",
    "too", "so", "then", "if", "when", "while", "which", "who", "that", "a", "an", "the", "will", "would",
    "can", "could", "should", "may", "might", "must", "had", "has", "have", "did", "do", "does",
}  # fmt: skip
_UNIT = _re(
    rf"({_QTY})(\s?|-)({'|'.join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))})"
    r"(?![\w/])"
)


_UNIT_FRACTION = _re(
    rf"(?<![\w.,/])(\d{{1,3}})/(\d{{1,3}})\s?({'|'.join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))})"
    r"(?![\w/])"
)
_FEET_INCHES = _re(r"(?<![\w.,])(\d{1,2})(?:'|\s?ft\.?)\s?(\d{1,2})(?:\"|''|\s?in\b\.?)")  # 5'10", 5 ft 10 in


_FEET_ALONE = _re(r"(?<![\w.,'])(\d{1,2})'(?=\s|$|[,;.!?])")  # "a 6' car"
_CIRCA = _re(r"\b(?:c|ca|circa)\.?\s?(?=\d{3,4}\b)")  # "c. 1951"
# "ninety (90) days", as contracts write numbers twice: the digits in brackets are not read again
_DUPLICATE_DIGITS = _re(r"\s?\((\d{1,9}(?:,\d{3})*)\)")
_COMPARISON_WORDS = {"<": "less than", ">": "greater than", "<=": "less than or equal to",
                     ">=": "greater than or equal to", "!=": "not equal to"}
# A comparison between spaces or before a number ("N > 0", "[ < 1% ]", ">50"), never a tag's bracket
_COMPARISON = _re(r"(?:(?<=\s)|^)(<=|>=|!=|<|>)(?=\s|-?\d|\.\d)")


def _say_feet_alone(m: re.Match) -> str:
    n = int(m.group(1))
    return _pad(m, f"{cardinal(n)} {'foot' if n == 1 else 'feet'}")


def _say_circa(m: re.Match) -> str:
    return _match_case(m.group(0), "circa") + " "


def _say_duplicate_digits(m: re.Match) -> str:
    digits = m.group(1).replace(",", "")
    before = m.string[max(0, m.start() - 120) : m.start()].lower().rstrip()
    written = cardinal(int(digits))
    same = before.endswith((written, written.replace(" and ", " "), m.group(1)))
    return "" if same else m.group(0)


def _say_comparison(m: re.Match) -> str:
    return f" {_COMPARISON_WORDS[m.group(1)]} "


def _say_feet_inches(m: re.Match) -> str:
    return _pad(m, f"{cardinal(int(m.group(1)))} foot {cardinal(int(m.group(2)))}")


def _describes_a_noun(m: re.Match) -> bool:
    before = (_previous_word(m) or "").lower()
    if before in _ARTICLES:
        return True
    after = re.match(r"\s+([a-z]+)\b", m.string[m.end() :])
    return before in _DETERMINERS and after is not None and after.group(1) not in _NOT_A_NOUN


def _say_unit(m: re.Match) -> str:
    qty, joint, unit = m.groups()
    if unit in _ATTACHED_ONLY and joint:
        return m.group(0)  # the plain number rule reads it
    spoken, is_one = _say_quantity(qty)
    one, many = _UNITS[unit]
    if joint == "-":  # "a 5-km run" -> "a five-kilometer run"
        return _pad(m, f"{spoken}-{one.replace(' ', '-')}")
    return _pad(m, f"{spoken} {one if is_one or _describes_a_noun(m) else many}")


def _say_unit_fraction(m: re.Match) -> str:
    numerator, denominator = int(m.group(1)), int(m.group(2))
    one, many = _UNITS[m.group(3)]
    if not 0 < numerator < denominator:
        return _pad(m, f"{_fraction(numerator, denominator)} {many}")  # "3/2 cups": "three over two cups"
    article = "an" if one[0] in "aeiou" or one.startswith("hour") else "a"
    return _pad(m, f"{_fraction(numerator, denominator)} of {article} {one}")  # "one half of a pound"


# --- Other numbers: most specific shapes first, plain digits last -------------------------

_DIMENSIONS = _re(rf"(?<![\w.,])({_NUM})\s?x\s?({_NUM})(?![\w.])")  # "3x4"
_TIMES = _re(rf"(?<![\w.,])({_NUM})x(?![A-Za-z0-9])")  # "2x"
_ORDINAL = _re(r"(?<![\w.,])(\d{1,3}(?:,\d{3}){1,4}|\d{1,15})(st|nd|rd|th)\b", re.IGNORECASE)
_DECADE = _re(r"(?<![\w.,'])(?:'?([1-9]0)|([1-9]\d{2}0))'?s\b")  # "'90s", "1990s", "1990's"
_DOTTED_NUMBER = _re(r"(?<![\w.])\d+(?:\.\d+){2,}(?!\w|\.\d)")  # versions, IP addresses
_SPOKEN_AS_PAIRS = {"24/7": "twenty-four seven", "9/11": "nine eleven", "50/50": "fifty fifty"}
_MIXED_FRACTION = _re(r"(?<![\w.,/])(\d{1,6})\s+(\d{1,6})/(\d{1,6})(?![\w/]|\.\d)")
_FRACTION = _re(r"(?<![\w.,/])(\d{1,6})/(\d{1,6})(?![\w/]|\.\d)")
_RANGE = _re(rf"(?<![\w.,-])({_NUM})-({_NUM})(?![\w-]|\.\d)")
# "4/5 stars", "3.5/5", "10/10": a score, read "out of"
_SCORE = _re(
    rf"(?<![\w.,/])({_NUM})/(\d{{1,3}})(?![\w/]|\.\d)(?=\s+(?:stars?|points?)\b)"
    r"|(?<![\w.,/])(\d+\.\d+)/(\d{1,3})(?![\w/]|\.\d)"
)
# "a 2:1 ratio", "odds of 3:1", "a 60:40 split": "to" only where a ratio is meant ("John 3:16" is not one)
_RATIO = _re(
    r"(?P<lead>\b(?i:odds|ratio)(?:\s+(?:of|is|was|are|were))?\s+)?"
    r"(?<![\w.,:])(?P<a>\d{1,3}):(?P<b>\d{1,3})(?![\w:]|\.\d)"
    r"(?(lead)|(?=\s+(?:ratio|odds|split|majority|margin|win|victory|lead|scale)\b))"
)
_POWER = _re(rf"(?<![\w.,])({_NUM})\s?\^\s?(-?\d{{1,3}})(?![\w.])")  # "10^6"
_THOUSANDS = _re(rf"(?<![\w.,])({_NUM})k\b")  # "100k views" (a capital K is read "K": "a 5K run")
# "1080p", "720p", "4320p": video lines, read in pairs like a year ("ten eighty p")
_VIDEO_LINES = _re(r"(?<![\w.,])(240|360|480|576|720|1080|1440|2160|4320)([pi])\b")
# "C#", "F# minor": a sharp note or the languages named after one (before "#" is dropped as a symbol)
_SHARP = _re(r"(?<![\w#])([A-G])#(?![\w#])")
_CODE_DIGITS = _re(r"(?<=\b[A-Z])\d{3,}\b|(?<=\b[A-Z]{2})\d{3,}\b|(?<=\b[A-Z]{3})\d{3,}\b")  # "BA2490"
# A 3- or 4-digit number that names something rather than counts it, after a word that says so:
# read in pairs as people say them ("Room 101": "room one oh one", "Flight 2490": "flight
# twenty-four ninety", "a Boeing 737": "seven thirty-seven"), not "one hundred and one".
_LABEL_WORDS = (
    "room|rm|flight|gate|suite|apartment|apt|platform|bus|train|terminal|locker|cabin|ward|pier|berth"
    "|route|highway|interstate|model|boeing|airbus|porsche|peugeot"
)
_LABEL_NUMBER = _re(rf"\b((?i:{_LABEL_WORDS}) )(\d{{3,4}})(?!\w|[.,/:-]\d)")
# An SMS short code is dialled, digit by digit: "Text WIN to 80080", "text STOP to 12345"
_SHORT_CODE = _re(r"\b((?i:text|txt|sms)\s+[\"']?[A-Za-z]+[\"']?\s+to\s+)(\d{4,6})(?![\w,.-]\d|\w)")
_YEAR_NUMBER = _re(r"(?<![\w.,-])(1[1-9]\d\d|20\d\d)(?!\d|[.,]\d)")
# A year by its era or after "year"/"AD", any century: "AD 1066", "1066 AD", "in the year 1066"
_ERA = r"(?:BCE|BC|AD|CE|B ?C(?: ?E)?|A ?D|C ?E)"  # "A.D." is "A D" by now
_ERA_YEAR = _re(
    rf"(?<![\w.,])(\d{{1,4}})(?=\s?{_ERA}(?!\w))|(?<=\b(?:AD|CE) )(\d{{1,4}})\b(?![.,]\d)"
    r"|(?<=\bA D )(\d{1,4})\b(?![.,]\d)|(?<=\b[Yy]ear )(\d{4})\b(?![.,]\d)"
)
_NUMBER = _re(rf"(?:(?<![\w.-])-)?{_NUM}|(?<![\w.])\.\d+")
_LEFTOVER_DIGITS = _re(r"\d+")


def _say_dimensions(m: re.Match) -> str:
    return _pad(m, f"{spell_number(m.group(1))} by {spell_number(m.group(2))}")


def _say_times(m: re.Match) -> str:
    return _pad(m, f"{spell_number(m.group(1))} times")


def _say_ordinal(m: re.Match) -> str:
    return _pad(m, ordinal(int(m.group(1).replace(",", ""))))


def _say_decade(m: re.Match) -> str:
    spoken = cardinal(int(m.group(1))) if m.group(1) else year(int(m.group(2)))
    head, _, last = spoken.rpartition(" ")
    return _pad(m, f"{head} {_plural(last)}".strip())  # "nineteen ninety" -> "... nineties"


def _say_dotted_number(m: re.Match) -> str:
    return _pad(m, " dot ".join(spell_number(part) for part in m.group(0).split(".")))


def _fraction(numerator: int, denominator: int) -> str:
    if numerator == denominator:
        return f"{cardinal(numerator)} out of {cardinal(denominator)}"  # "10/10", "5/5"
    if not 0 < numerator < denominator <= 100:
        return f"{cardinal(numerator)} over {cardinal(denominator)}"  # "3/2", "1/1000"
    if denominator == 2:
        part = "half"
    elif denominator == 4:
        part = "quarter"
    else:
        part = ordinal(denominator)
    if numerator != 1:
        part = "halves" if part == "half" else part + "s"
    return f"{cardinal(numerator)} {part}"


def _say_mixed_fraction(m: re.Match) -> str:
    whole, numerator, denominator = (int(g) for g in m.groups())
    return _pad(m, f"{cardinal(whole)} and {_fraction(numerator, denominator)}")


def _say_fraction(m: re.Match) -> str:
    if m.group(0) in _SPOKEN_AS_PAIRS:
        return _pad(m, _SPOKEN_AS_PAIRS[m.group(0)])
    return _pad(m, _fraction(int(m.group(1)), int(m.group(2))))


def _say_score(m: re.Match) -> str:
    got, of = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return _pad(m, f"{spell_number(got)} out of {spell_number(of)}")


def _say_ratio(m: re.Match) -> str:
    return (m["lead"] or "") + _pad(m, f"{cardinal(int(m['a']))} to {cardinal(int(m['b']))}")


def _say_power(m: re.Match) -> str:
    return _pad(m, f"{spell_number(m.group(1))} to the power of {spell_number(m.group(2))}")


def _say_thousands(m: re.Match) -> str:
    return _pad(m, f"{spell_number(m.group(1))} thousand")


def _say_video_lines(m: re.Match) -> str:
    lines = int(m.group(1))
    pairs = year(lines) if lines >= 1000 else f"{cardinal(lines // 100)} {cardinal(lines % 100)}"
    return _pad(m, f"{pairs} {m.group(2)}")


def _say_sharp(m: re.Match) -> str:
    return f"{m.group(1)} sharp"


def _say_code_digits(m: re.Match) -> str:
    return _pad(m, say_digits(m.group(0)))


def _say_range(m: re.Match) -> str:
    low, high = m.group(1), m.group(2)
    if _is_year_like(low) and (_is_year_like(high) or len(high) == 2):  # "1939-45"
        spoken = f"{year(int(low))} to {year(int(high)) if len(high) == 4 else cardinal(int(high))}"
    else:
        spoken = f"{spell_number(low)} to {spell_number(high)}"
    return _pad(m, spoken)


def say_label_number(digits: str) -> str:
    """A 3- or 4-digit name read in pairs: 101 "one oh one", 911 "nine eleven", 100 "one hundred",
    2490 "twenty-four ninety", 1001 "ten oh one", 1900 "nineteen hundred", 007 "zero zero seven"."""
    if digits[0] == "0" or len(digits) not in (3, 4):
        return say_digits(digits)
    head, tail = digits[:-2], digits[-2:]
    if tail == "00":
        return cardinal(int(digits)) if len(digits) == 3 or digits.endswith("000") else f"{cardinal(int(head))} hundred"
    rest = f"oh {_DIGIT_WORDS[int(tail[1])]}" if tail[0] == "0" else cardinal(int(tail))
    return f"{cardinal(int(head))} {rest}"


def _say_label_number(m: re.Match) -> str:
    return m.group(1) + say_label_number(m.group(2))


def _say_era_year(m: re.Match) -> str:
    return _pad(m, year(int(next(g for g in m.groups() if g))))


def _say_year(m: re.Match) -> str:
    return _pad(m, year(int(m.group(1))))


def _say_number(m: re.Match) -> str:
    return _pad(m, spell_number(m.group(0)))


def _say_leftover_digits(m: re.Match) -> str:
    # Only reached when a handler above gave up on its match; reading digits cannot fail.
    return _pad(m, say_digits(m.group(0)))


# --- Roman numerals -----------------------------------------------------------------------

# espeak reads "Chapter IV" as "chapter roman four" and "Henry VIII" as "Henry roman eight".
# A numeral is read only after a word that says what it counts: a monarch's or pope's name
# takes an ordinal ("Henry the eighth"), a word of order a cardinal ("Part two", "World War one",
# "Super Bowl fifty-five"), any other capitalised word a cardinal when the numeral has two or
# more letters ("Rocky four"). A lone "I", "V" or "X" elsewhere is a pronoun or a letter
# ("Then I", "Malcolm X", "Plan B") and is left alone, as are numerals made with C, D or M,
# which collide with acronyms ("Washington DC", "CD", "MD").
_REGNAL_NAMES = frozenset(
    "Henry Edward George William Richard Charles James John Elizabeth Mary Anne Victoria Louis"
    " Philip Ferdinand Frederick Peter Ivan Nicholas Alexander Catherine Napoleon Pius Leo"
    " Gregory Benedict Paul Innocent Clement Urban Boniface Alfonso Carlos Felipe Gustav"
    " Gustavus Christian Harald Olaf Wilhelm Friedrich Franz Otto Rudolf Ludwig Constantine"
    " Justinian Ramesses Ramses Amenhotep Thutmose Ptolemy Darius Xerxes Antiochus Edmund"
    " Harold Stephen David Robert Alfred Umberto Vittorio Leopold Albert Baudouin Juan Manuel".split()
)
_ORDER_WORDS = frozenset(
    "chapter part act scene book volume section article phase type class grade level stage"
    " title appendix season episode round war bowl tier lesson step figure table plate psalm"
    " canto series movement vatican league division category schedule exhibit".split()
)
_ROMAN_VALUE = _re(r"(?:(XC|XL|L?X{0,3})(IX|IV|V?I{0,3}))", re.IGNORECASE)
_ROMAN = _re(r"\b([A-Z][a-z]+|[a-z]+)([ \t]+)([IVXL]{1,7}|[ivxl]{2,7})\b(?!-)(?!'(?!s\b))")  # "III's"
_LONE_I_FOLLOWS = _re(r"\s*(?:[,.;:!?)]|$|'s\b|\s+(?:of|and|was|had|who|died|ruled|reigned)\b)")
_WORLD_WARS = _re(r"\bWW(II|I)\b")


def roman_value(numeral: str) -> int | None:
    """1 to 89 for a well-formed numeral of I, V, X and L; None otherwise ("IIII", "VX")."""
    m = _ROMAN_VALUE.fullmatch(numeral)
    if not numeral or m is None:
        return None
    tens = {"xc": 90, "xl": 40}.get(m.group(1).lower())
    if tens is None:
        tens = 50 * m.group(1).lower().count("l") + 10 * m.group(1).lower().count("x")
    units = m.group(2).lower()
    ones = {"ix": 9, "iv": 4}.get(units, 5 * units.count("v") + units.count("i"))
    return tens + ones


def _say_roman(m: re.Match) -> str:
    word, space, numeral = m.groups()
    value = roman_value(numeral)
    if value is None:
        return m.group(0)
    if word.lower() in _ORDER_WORDS:
        return f"{word}{space}{cardinal(value)}"
    if not numeral.isupper() or "L" in numeral:
        return m.group(0)
    if word in _REGNAL_NAMES and (numeral != "I" or _LONE_I_FOLLOWS.match(m.string, m.end())):
        return f"{word}{space}the {ordinal(value)}"
    if len(numeral) >= 2 and word[0].isupper() and word not in _SENTENCE_STARTERS:
        return f"{word}{space}{cardinal(value)}"
    return m.group(0)


def _say_world_war(m: re.Match) -> str:
    return "World War " + ("two" if m.group(1) == "II" else "one")


# --- Symbols, acronyms --------------------------------------------------------------------

_CAPITALS_AND = _re(r"\b([A-Z]{1,3})&([A-Z]{1,3})\b")  # "R&D", "AT&T"
_SYMBOL_WORDS = {"&": "and", "@": "at", "+": "plus", "=": "equals", "%": "percent", "°": "degrees"}
_SYMBOL = _re(r"([&@+=%°])\1{2,}|[&@+=%°]")  # a run of three or more is a rule line ("====")
_WITH = _re(r"\b[wW]/(?:o\b|(?=\s))|\b[bB]/c\b")  # "w/", "w/o" and "b/c"
_AND_OR = _re(r"\b(and|And)/or\b")
_WORD_SLASH = _re(r"(?<=[A-Za-z])\s*/\s*(?=[A-Za-z])")
# "$19.99/month", "24 hrs/day", "5 days/wk": a number (and its unit) per something, read "per"
# before the numbers become words ("day/night" is no rate: "/" is read "or" there)
_PER_SLASH = _re(
    r"(\d(?:[\d.,]*\d)?%?(?:\s?[A-Za-z]{1,8})?)\s?/\s?(second|sec|s|minute|min|hour|hr|h|day|night|week|wk"
    r"|month|mo|year|yr|person|head|user|seat|unit|item|piece|serving|page|word|visit|game|mile|gallon|kg|lb)\b",
    re.IGNORECASE,
)
_PER_UNIT = {"sec": "second", "s": "second", "min": "minute", "hr": "hour", "h": "hour", "wk": "week", "mo": "month",
             "yr": "year", "kg": "kilogram", "lb": "pound"}  # fmt: skip
# "y/y", "YoY", "m/m", "q/q": growth against the same period before
_OVER_PERIOD = _re(r"\b(?:([ymqwYMQW])/\1|([YMQ])o\2)\b")  # not "Mom"
_PERIOD_WORDS = {"y": "year", "m": "month", "q": "quarter", "w": "week"}
_VERSION = _re(r"\b[vV](?=\d+(?:\.\d+)*\b)")  # "v2.3": "version two point three"
_DOT_IN_WORD = _re(r"(?<=[A-Za-z0-9])\.(?=[A-Za-z0-9])")  # "file.txt", "Node.js"

_SPELLED_ACRONYMS = frozenset(
    "FBI CIA CEO CFO COO CTO EU UK UN USA UAE IBM IRS UFO AI API CPU GPU URL USB ATM EPA IOU IQ"
    " ID IP ICU IPO DIY HIV BMI MIT PDF ETA VIP NBA UCLA LA FAQ EST EDT CET CEST AEST UTC AD CE BCE".split()
)
# All-caps words with no A E I O U that are still words, mostly from shouted text.
_VOWELLESS_WORDS = frozenset(
    "MY BY WHY TRY FLY SKY SHY DRY CRY FRY PRY SLY SPY STY PLY WRY GYM GYMS HYMN LYNX MYTH"
    " SYNC NYMPH CRYPT TRYST PSST HMM SHH BRR GRR TSK NTH".split()
)
_ACRONYM = _re(r"\b([A-Z]{2,5})(s?)\b")
# Words espeak spells letter by letter ("shh" -> "ess aitch aitch"), respelled as they are said
_INTERJECTION = _re(
    r"\b(?:(sh{2,})|(br{2,})|(gr{2,})|(nth)|(h?m{2,})|(pst)|(mhm|m{1,2}-?hm{1,2})|(ew{2,})|(aw{2,})|(hmph))\b",
    re.IGNORECASE,
)
_INTERJECTION_WORDS = ("shush", "burr", "gurr", "enth", "hmm", "psst", "hmm hmm", "ew", "aw", "hmm")
_LAUGH = _re(r"\b(?:ha){2,}h?\b", re.IGNORECASE)  # "hahaha": "ha ha ha"
# A stammer: "I-I", "N-no", "Wh-what": consonants that start the next word (espeak would spell them
# out), or "I" twice. Not "so-so", "no-nonsense", "toe-to-toe", "D-day".
_STAMMER = _re(r"\b(?:([b-df-hj-np-tv-xzB-DF-HJ-NP-TV-XZ]{1,3})-(?:\1-)*(?!day\b)(\1[A-Za-z]*)|(I)-(?=I\b))",
               re.IGNORECASE)
# A letter held three times or more is an elongation ("Nooo", "Sooo", "Heyyy"): espeak reads
# "nooo" as "noo-oh", so it is said once. Not an acronym of one letter ("AAA", "XXX").
_ELONGATED = _re(r"\b(?-i:(?![A-Z]{3}\b))[a-z]*([a-z])\1{2,}[a-z]*\b", re.IGNORECASE)
_LONE_VOWELS = {"a": "ah", "o": "oh", "e": "eh", "u": "uh", "i": "ee"}


def _say_capitals_and(m: re.Match) -> str:
    return " ".join(m.group(1)) + " and " + " ".join(m.group(2))


def _say_symbol(m: re.Match) -> str:
    return f" {_SYMBOL_WORDS[m.group(0)]} " if len(m.group(0)) == 1 else " "


def _say_with(m: re.Match) -> str:
    spoken = "because" if m.group(0)[0] in "bB" else "without" if m.group(0).endswith("o") else "with"
    return _match_case(m.group(0), spoken)


def _say_and_or(m: re.Match) -> str:
    return m.group(1) + " or"  # not "and or or"


def _say_per_slash(m: re.Match) -> str:
    amount, unit = m.groups()
    return f"{amount} per {_match_case(unit, _PER_UNIT[unit.lower()]) if unit.lower() in _PER_UNIT else unit}"


def _say_over_period(m: re.Match) -> str:
    period = _PERIOD_WORDS[(m.group(1) or m.group(2)).lower()]
    return f"{period} over {period}"


def _say_word_slash(m: re.Match) -> str:
    return " or "  # "he/she", "yes/no" are read as alternatives


def _say_dot_in_word(m: re.Match) -> str:
    return " dot "


def _say_elongated(m: re.Match) -> str:
    word = re.sub(r"([a-z])\1{2,}", r"\1", m.group(0), flags=re.IGNORECASE)
    spoken = _LONE_VOWELS.get(word.lower())
    return _match_case(word, spoken) if spoken else word


def _say_laugh(m: re.Match) -> str:
    has = [m.group(0)[i : i + 2] for i in range(0, len(m.group(0)) - 1, 2)]
    return " ".join(has)


def _say_stammer(m: re.Match) -> str:
    if m.group(3):
        return "I, "
    word = m.group(2)  # "N-no" -> "No": the fragment is dropped, its capital kept (a sentence may start here)
    return word[0].upper() + word[1:] if m.group(1)[0].isupper() else word


def _say_interjection(m: re.Match) -> str:
    spoken = _INTERJECTION_WORDS[m.lastindex - 1]
    return spoken.upper() if m.group(0).isupper() and len(m.group(0)) > 1 else _match_case(m.group(0), spoken)


def _say_acronym(m: re.Match) -> str:
    token = m.group(1)
    if token == "OK" and not m.group(2):
        return "okay"
    spelled = token in _SPELLED_ACRONYMS or not re.search("[AEIOU]", token)
    if not spelled or token in _VOWELLESS_WORDS:
        return m.group(0)  # "NASA", "WHY"
    return " ".join(token) + m.group(2)  # "BBC" -> "B B C", "CDs" -> "C Ds"


# --------------------------------------------------------------------------------------------
# 5. The rule table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern
    handler: Callable[[re.Match], str]

    def apply(self, text: str) -> str:
        return self.pattern.sub(self._guarded, text)

    def _guarded(self, m: re.Match) -> str:
        try:
            return self.handler(m)
        except Exception:  # the contract is "never raise": leave the text to the later rules
            log.warning("normalize rule %r failed on %r", self.name, m.group(0), exc_info=True)
            return m.group(0)


_ABBREVIATION_RULES = (
    _Rule("number sign", _NUMBER_SIGN, _say_number_sign),
    _Rule("reference", _REFERENCE, _say_reference),
    _Rule("title", _TITLE, _expander(_TITLES, may_end_sentence=False)),
    _Rule("dr/st", _DR_ST, _say_dr_st),
    _Rule("trailing abbreviation", _TRAILING_RE, _expander(_TRAILING, may_end_sentence=True)),
    _Rule("latin abbreviation", _LATIN_RE, _expander(_LATIN, may_end_sentence=True)),
    _Rule("a.m./p.m.", _AMPM_ALONE, _say_ampm),
    _Rule("dotted capitals", _DOTTED_CAPITALS, _say_dotted_capitals),
    _Rule("initial", _INITIAL, _say_initial),
)

# Subtitle and web markup pasted into a script: "<i>", "</font>", "<br/>", "{\an8}"
_MARKUP = _re(
    r"</?(?:i|b|u|s|em|strong|font|span|br|p|div|sub|sup)(?:\s+[\w-]+=(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s<>]+))*\s*/?>"
    r"|\{\\[^{}]{0,200}\}",
    re.IGNORECASE,
)

# Order matters: each rule claims its text before a more general one can misread it.
_RULES = (
    _Rule("markup", _MARKUP, lambda m: " "),
    _Rule("email", _EMAIL, _say_url),
    _Rule("url", _URL, _say_url),
    _Rule("sharp", _SHARP, _say_sharp),
    _Rule("version", _VERSION, lambda m: "version "),
    _Rule("weekday", _WEEKDAY_ABBR, _say_weekday),  # before "5 May" becomes words
    _Rule("iso date", _ISO_DATE, _say_iso_date),
    _Rule("us numeric date", _US_NUMERIC_DATE, _say_us_numeric_date),
    _Rule("day month", _DAY_MONTH, _say_day_month),  # before "month day" takes "January 2024"
    _Rule("month day", _MONTH_DAY, _say_month_day),
    _Rule("dialled number", _DIALLED, _say_dialled),
    _Rule("season", _SEASON, _say_season),
    _Rule("fiscal year", _FISCAL_YEAR, _say_fiscal_year),
    _Rule("state and zip", _STATE_ZIP, _say_state_zip),  # before "62704-1234" is a phone number
    _Rule("po box", _PO_BOX, lambda m: "P O "),
    _Rule("phone", _PHONE, _say_phone),
    _Rule("digit chain", _DIGIT_CHAIN, _say_digit_chain),
    _Rule("time range", _TIME_RANGE_DASH, _say_time_range_dash),
    _Rule("weekday range", _WEEKDAY_RANGE, _say_weekday_range),
    _Rule("month range", _MONTH_RANGE, _say_month_range),
    _Rule("clock range", _CLOCK_RANGE_DASH, lambda m: " to "),
    _Rule("clock", _CLOCK, _say_clock),
    _Rule("hour am/pm", _HOUR_AMPM, _say_hour_ampm),
    *_ABBREVIATION_RULES,
    _Rule("duplicate digits", _DUPLICATE_DIGITS, _say_duplicate_digits),
    _Rule("circa", _CIRCA, _say_circa),
    _Rule("comparison", _COMPARISON, _say_comparison),
    _Rule("per", _PER_SLASH, _say_per_slash),  # before "$19.99" and "24 hrs" become words
    _Rule("currency code", _CURRENCY_CODE, _say_currency_code),
    _Rule("money", _MONEY, _say_money),
    _Rule("cents", _CENTS, _say_cents),
    _Rule("percent", _PERCENT, _say_percent),
    _Rule("degrees", _DEGREES, _say_degrees),
    _Rule("feet and inches", _FEET_INCHES, _say_feet_inches),
    _Rule("feet alone", _FEET_ALONE, _say_feet_alone),
    _Rule("video lines", _VIDEO_LINES, _say_video_lines),
    _Rule("unit fraction", _UNIT_FRACTION, _say_unit_fraction),
    _Rule("unit", _UNIT, _say_unit),
    _Rule("dimensions", _DIMENSIONS, _say_dimensions),
    _Rule("times", _TIMES, _say_times),
    _Rule("ordinal", _ORDINAL, _say_ordinal),
    _Rule("decade", _DECADE, _say_decade),
    _Rule("dotted number", _DOTTED_NUMBER, _say_dotted_number),
    _Rule("score", _SCORE, _say_score),
    _Rule("ratio", _RATIO, _say_ratio),
    _Rule("power", _POWER, _say_power),
    _Rule("thousands", _THOUSANDS, _say_thousands),
    _Rule("code digits", _CODE_DIGITS, _say_code_digits),
    _Rule("label number", _LABEL_NUMBER, _say_label_number),
    _Rule("short code", _SHORT_CODE, lambda m: m.group(1) + say_digits(m.group(2))),
    _Rule("mixed fraction", _MIXED_FRACTION, _say_mixed_fraction),
    _Rule("fraction", _FRACTION, _say_fraction),
    _Rule("range", _RANGE, _say_range),
    _Rule("era year", _ERA_YEAR, _say_era_year),
    _Rule("year", _YEAR_NUMBER, _say_year),
    _Rule("number", _NUMBER, _say_number),
    _Rule("leftover digits", _LEFTOVER_DIGITS, _say_leftover_digits),
    _Rule("world war", _WORLD_WARS, _say_world_war),
    _Rule("roman numeral", _ROMAN, _say_roman),
    _Rule("capitals and", _CAPITALS_AND, _say_capitals_and),
    _Rule("and/or", _AND_OR, _say_and_or),
    _Rule("over period", _OVER_PERIOD, _say_over_period),
    _Rule("with", _WITH, _say_with),
    _Rule("word slash", _WORD_SLASH, _say_word_slash),
    _Rule("symbol", _SYMBOL, _say_symbol),
    _Rule("dot in word", _DOT_IN_WORD, _say_dot_in_word),
    _Rule("stammer", _STAMMER, _say_stammer),
    _Rule("laugh", _LAUGH, _say_laugh),
    _Rule("interjection", _INTERJECTION, _say_interjection),
    _Rule("elongated", _ELONGATED, _say_elongated),
    _Rule("acronym", _ACRONYM, _say_acronym),
)


def _apply(rules: tuple[_Rule, ...], text: str) -> str:
    for rule in rules:
        text = rule.apply(text)
    return text


# --------------------------------------------------------------------------------------------
# 6. Tidying punctuation
# --------------------------------------------------------------------------------------------

_BRACKETS = _re(r"[()\[\]{}]")  # an aside is read with a pause either side
_DASH_PAUSE = _re(r"\s-+\s|-{2,}")
_STRAY_HYPHEN = _re(r"(?<![A-Za-z0-9])-|-(?![A-Za-z0-9])")
_STRAY_APOSTROPHE = _re(r"(?<![A-Za-z])'|'(?![A-Za-z])(?<![sS]')")  # keeps "don't", "boys'"
_UNSPEAKABLE = _re(r"[^A-Za-z .,!?;:'-]+")
_PUNCT_RUN = _re(r"\s*([.,!?;:])[\s.,!?;:]*")
_PUNCT_STRENGTH = "?!.;:,"  # a run like "?!" or ",." keeps its strongest mark
_SPACES = _re(r"\s+")
_LEADING_PUNCT = _re(r"^[\s.,!?;:]+")
# A period before a lower-case word belongs to an abbreviation no rule knows ("the temp. was",
# "est. 1990" once the year is words): it is neither a sentence end nor a pause.
_INNER_PERIOD = _re(r"\.(?= [a-z])")
_TRAILING_PAUSE = _re(r"[\s,;:]+$")
# A sentence that starts with a number ("Preheat the oven. 2 eggs ...") would start with a
# lower-case word once the number is spelled, and `_INNER_PERIOD` would then take the period
# before it for an abbreviation's. `normalize` marks the number with a control character that the
# rules' lookbehinds treat as punctuation, and `_tidy` capitalises the word it precedes. Not after
# an abbreviation: "Fig. 3", "est. 1990", "approx. 5".
_SENTENCE_MARK = "\x1f"
_NUMBER_STARTS_SENTENCE = _re(r"\b([A-Za-z]+|\d+)([.!?][\"')\]]*[ \t]+)(?=[-+]?[\d$#]|[\xa3\u20ac\xa5])")
_MARKED_START = _re(_SENTENCE_MARK + r"([^A-Za-z]*)([a-z])")


def _mark_number_sentence_starts(text: str) -> str:
    def mark(m: re.Match) -> str:
        word, end = m.groups()
        if end[0] == "." and word.isalpha() and (len(word) < 3 or word.lower() in _ABBREVIATED_WORDS):
            return m.group(0)
        return word + end + _SENTENCE_MARK

    return _NUMBER_STARTS_SENTENCE.sub(mark, text)  # "(see above)" at the end leaves a comma with nothing after it


def _strongest(m: re.Match) -> str:
    run = m.group(0).strip()
    if run.startswith("..") and m.string[m.end() : m.end() + 1].islower():
        return ", "  # "Wait... what?": a trailing-off pause, not a sentence end
    marks = set(run) & set(_PUNCT_STRENGTH)
    return min(marks, key=_PUNCT_STRENGTH.index) + " "


def _tidy(text: str) -> str:
    text = _MARKED_START.sub(lambda m: " " + m.group(1) + m.group(2).upper(), text)
    text = _BRACKETS.sub(" , ", text)
    text = _DASH_PAUSE.sub(" , ", text)
    text = _STRAY_HYPHEN.sub(" ", text)
    text = _STRAY_APOSTROPHE.sub(" ", text)
    text = _UNSPEAKABLE.sub(" ", text)
    text = _SPACES.sub(" ", text)  # first, or each space of a long run would rescan the run
    text = _PUNCT_RUN.sub(_strongest, text)
    text = _INNER_PERIOD.sub("", text)
    text = _LEADING_PUNCT.sub("", text)
    text = _TRAILING_PAUSE.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    return text if re.search("[A-Za-z]", text) else ""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def expand_abbreviations(text: str) -> str:
    """Expand the abbreviations only: "Dr. Smith lives on Main St." -> "Doctor Smith lives on
    Main Street." (titles, Dr./St., Jr., Inc., etc., e.g., a.m., U.S., "No. 5")."""
    return _apply(_ABBREVIATION_RULES, text)


def normalize(text: str) -> str:
    """Turn raw English text into speakable words; "" if nothing speakable remains.

    Never raises on a `str`; the result is ASCII letters, spaces and ". , ! ? ; : ' -".

    Raises:
        TextError: `text` is not a `str`.
    """
    if not isinstance(text, str):
        raise TextError(f"expected str, got {type(text).__name__}")
    text = _SQUARED.sub(lambda m: " squared" if m.group(1) == "\u00b2" else " cubed", text)
    return _tidy(_apply(_RULES, _mark_number_sentence_starts(fold_unicode(text))))
