"""One index term for the forms of a word that people mean as the same word.

The Snowball English stemmer (what PostgreSQL's `english_stem` is too) leaves
three kinds of forms apart that a reader takes for one word:

- a doubled consonant it removes only after -ed/-ing: "handcuff" → handcuff but
  "handcuffing" → handcuf, so "handcuffs" found none of the posts saying
  "handcuffing" (and "did you mean" offered the stem). Every term ending in a
  doubled consonant of that set loses the second letter, whatever came before.
- British and American spelling: "organisation" → organis, "organization" →
  organ; "behaviour"/"behavior", "centre"/"center", "analyse"/"analyze". Before
  stemming the word gets one spelling by suffix rules: -ise/-yse (the users are
  British, and -ise keeps "organization" apart from "organ"), but -or and -er
  (behaviour → behavior: -or → -our cannot be decided, think of "actor").
- a few words whose variants differ in the middle ("defence"/"defense",
  "paediatric"/"pediatric", "judgement"/"judgment"): a short table of stems.

`normal(word)` is applied to every word before stemming and `canonical(stem)`
after it, by search.text.term_of, the one definition of an index term, which
both backends use for what they index and for what is searched, so both sides
always agree. Changing anything here changes the index: bump
search.text.ANALYSIS_VERSION (both backends rebuild an index of another
version).
"""
from __future__ import annotations

import re

# -ize/-ization → -ise/-isation (at least three letters before: not "size", "prize", "seize").
_IZE = re.compile(r"(\w{3,})iz(e|es|ed|ing|er|ers|ation|ations|ational|ationally)")
# analyze → analyse, paralyzed → paralysed
_YZE = re.compile(r"(\w{2,})yz(e|es|ed|ing|er|ers)")
# behavior → behaviour is not decidable (actor, doctor), so -our becomes -or: behaviour → behavior.
_OUR = re.compile(r"(\w{2,})our(s|ed|ing|ful|fully|less|able|ably|ite|ites|ist|ists|er|ers|hood|ly|al|ally|ism)?")
_NOT_OUR = frozenset({"flour", "flours", "devour", "devours", "devoured", "devouring", "contour", "contours",
                      "contoured", "detour", "detours", "velour", "amour", "amours", "paramour", "troubadour",
                      "scour", "scours", "scoured", "scouring", "dour", "tour", "tours", "toured", "touring",
                      "pour", "pours", "poured", "pouring", "sour", "sours", "soured", "souring", "hour", "hours",
                      "four", "fours", "your", "yours", "our", "ours", "glamour", "odour", "odours"})
# centre → center, fibre → fiber, theatres → theaters (the -re endings of British spelling)
_RE = re.compile(r"(\w{2,}[tb])re(s|d)?")
_NOT_RE = frozenset({"genre", "genres", "macabre", "timbre", "timbres"})

# Stems (after Snowball) of variants that differ in the middle of the word → one of them.
STEMS = {
    "defens": "defenc", "offens": "offenc", "licens": "licenc", "pretens": "pretenc",
    "judgment": "judgement", "acknowledg": "acknowledg", "acknowledgment": "acknowledg",
    "acknowledgement": "acknowledg",
    "gray": "grey", "grayer": "greyer", "catalogu": "catalog", "dialogu": "dialog", "analogu": "analog",
    "pediatr": "paediatr", "pediatrician": "paediatrician", "anesthet": "anaesthet", "anesthesia": "anaesthesia",
    "estrogen": "oestrogen", "fetus": "foetus", "diarrhea": "diarrhoea", "encyclopedia": "encyclopaedia",
    "maneuv": "manoeuvr", "maneuver": "manoeuvr", "manoeuvr": "manoeuvr", "aluminum": "aluminium",
    "plow": "plough", "mold": "mould", "cozi": "cosi", "cozy": "cosi", "cosy": "cosi",
    "enrollment": "enrolment", "fulfil": "fulfil", "fulfill": "fulfil", "fulfillment": "fulfil",
    "fulfilment": "fulfil", "skill": "skil", "skil": "skil",
    "ax": "axe", "pajama": "pyjama", "tire": "tire", "jewelri": "jewelleri", "jewelleri": "jewelleri",
    "odor": "odour", "odour": "odour", "glamor": "glamour", "glamour": "glamour",
}

_DOUBLE = re.compile(r"(?<=\w)(bb|dd|ff|gg|mm|nn|pp|rr|tt)$")


def normal(word: str) -> str:
    """The British form of a (folded) word where the spelling differs by a suffix rule."""
    if len(word) < 5 or not word.isalpha():
        return word
    if "z" in word:
        m = _IZE.fullmatch(word) or None
        if m:
            return f"{m.group(1)}is{m.group(2)}"
        m = _YZE.fullmatch(word)
        if m:
            return f"{m.group(1)}ys{m.group(2)}"
    if "our" in word and word not in _NOT_OUR:
        m = _OUR.fullmatch(word)
        if m:
            return f"{m.group(1)}or{m.group(2) or ''}"
    if word.endswith(("re", "res", "red")) and word not in _NOT_RE:
        m = _RE.fullmatch(word)
        if m:
            return f"{m.group(1)}er{'ed' if m.group(2) == 'd' else m.group(2) or ''}"
    return word


def canonical(stem: str) -> str:
    """One stem for the variants: table first, then no doubled final consonant."""
    stem = STEMS.get(stem, stem)
    if len(stem) > 2 and stem[-1] == stem[-2]:
        stem = _DOUBLE.sub(lambda m: m.group(1)[0], stem)
    return stem
