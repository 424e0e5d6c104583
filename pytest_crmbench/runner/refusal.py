"""Whether an agent's reply tells the user a request was refused.

On a refusal turn the agent must leave the CRM unchanged *and* say so. A bag of words
cannot judge the second part: "Done — the earlier quote was Rejected" names a status,
and "I couldn't set 150 %, so I set 99 %" reports a different change. The reply is
therefore cut into clauses (sentences, then commas, dashes, "but", "so", "and" …) and
each clause is scanned for two kinds of cue:

* failure (F): the request was not, or cannot be, carried out — "I can't / couldn't
  <verb>", "unable to", "failed", "not possible / allowed", "the CRM rejected …",
  "didn't go through", "no changes were made", "was not created", "couldn't find",
  "doesn't exist", "I tried …";
* success (S): some change was carried out — "Done", "I've updated …", "Created the
  quote", "has been saved", "Quote created", "is now 60 %", "successfully", "went
  through".

**Rule: a reply is a refusal iff it has a failure cue and no success claim.** A rule
statement ("probability must be between 1 and 99", "the deal is Closed-Won") is a
weak cue and counts as a failure only next to an apology or regret ("Sorry — …",
"Unfortunately …", "I'm afraid …").

Decisions:

* Any success claim wins, so partial success ("Created the client, but couldn't add
  the contact") and substitutes ("couldn't set 150 %, so I set 99 %") are not
  refusals: the turn must leave the CRM unchanged, and such a reply claims a change.
* A question back ("Which client did you mean?") is a refusal only when it also says
  the request was not carried out ("I couldn't find Acme Global — did you mean …?").
* A bare rule statement is not a refusal: it does not say whether the change was made.
* A success cue does not count in a question, an offer ("I can set 99 %"), a condition
  ("if …"), a reason ("since it has already been deleted"), quoted text, after a
  negation in its clause ("nothing was updated"), or for a prior state ("was already
  removed", "was created on 2024-05-01"). A failure cue does not count in a condition,
  in idioms ("couldn't be happier", "can't wait"), when negated ("no errors"), when it
  is about someone else ("they couldn't continue") or in quoted text — unless the
  quote reports the CRM's own message ('the CRM said "… not found"').

Everything is plain ``re`` over a normalised lower-case text (curly quotes, dashes,
contractions and markdown unified), so a verdict can be explained by :func:`analyse`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# == vocabulary ==================================================================
# Base forms of verbs a request or its refusal is phrased with.
_ACTION = (
    r"(?:create|add|update|change|modify|edit|set|move|delete|remove|upload|attach|save|"
    r"log|record|close|reopen|mark|rename|assign|link|schedule|apply|make|enter|insert|"
    r"put|register|store|amend|adjust|raise|lower|increase|decrease|bump|convert|"
    r"generate|issue|send|file|book|complete|finali[sz]e|process|submit|push|write|"
    r"import|replace|extend|renew|approve|accept|correct|fix|switch|flag|tag|archive|"
    r"copy|draft|prepare|do|proceed|perform|carry|execute|handle|help|get|find|locate|"
    r"match|access|retrieve|allow|let|permit|support|fulfil|fulfill|honou?r|finish|"
    r"touch|alter|reassign|transfer|cancel|associate|connect|post|give|use|quote|"
    r"track|go|work|happen|succeed|take|exist|belong|reach)"
)
# Past forms that, with "I"/"we" or at the head of a clause, claim a change was made.
_PAST = (
    r"(?:added|adjusted|amended|appended|applied|approved|archived|assigned|associated|"
    r"attached|booked|bumped|canceled|cancelled|capped|captured|changed|closed|"
    r"completed|connected|converted|copied|corrected|created|deleted|drafted|edited|"
    r"entered|extended|filed|filled|finali[sz]ed|fixed|flagged|generated|imported|"
    r"included|increased|decreased|inserted|issued|lowered|linked|logged|made|marked|"
    r"merged|modified|moved|populated|posted|prepared|processed|published|put|raised|"
    r"reassigned|recorded|reduced|registered|removed|renamed|renewed|reopened|replaced|"
    r"reset|restored|rounded|saved|scheduled|sent|set|stored|submitted|swapped|switched|"
    r"tagged|transferred|updated|uploaded|wrote|written|rejected|declined|activated|"
    r"deactivated|reactivated|shifted|pushed|dropped|documented|duplicated|cloned|"
    r"revised|rescheduled|placed|upped|lifted|trimmed|noted)"
)
# Past participles for passive claims ("has been saved") and their negation.
_PART = (
    r"(?:added|adjusted|amended|applied|archived|assigned|associated|attached|booked|"
    r"bumped|canceled|cancelled|changed|converted|corrected|created|deleted|edited|"
    r"entered|extended|filed|finali[sz]ed|fixed|generated|imported|increased|"
    r"decreased|inserted|issued|lowered|linked|logged|made|marked|merged|modified|"
    r"moved|posted|processed|raised|reassigned|recorded|reduced|registered|removed|"
    r"renamed|renewed|reopened|replaced|reset|restored|rounded|saved|scheduled|sent|"
    r"set|stored|submitted|switched|tagged|transferred|updated|uploaded|written|"
    r"rescheduled|revised|done|carried out|executed|performed|applied|reactivated|"
    r"activated|deactivated|duplicated|cloned|documented|placed)"
)
# The subset that reads as a claim even after a bare "is"/"are" ("the quote is created").
_PART_IS = (
    r"(?:created|updated|saved|added|uploaded|attached|logged|recorded|deleted|removed|"
    r"changed|done|applied|scheduled|renamed|linked|fixed|corrected|moved|generated|"
    r"submitted|stored|renewed|reopened)"
)
_ENTITY = (
    r"(?:client|contact|opportunit(?:y|ies)|deal|quote|contract|document|note|record|"
    r"file|account|compan(?:y|ies)|customer|entr(?:y|ies)|lead)s?"
)
_FILL = (
    r"(?:(?:actually|really|just|even|currently|yet|successfully|directly|simply|quite|"
    r"fully|properly|also|therefore|then|now|again|still|possibly|unfortunately|sadly|"
    r"seem to|manage to|get to|go ahead and|proceed to|find a way to|legally|"
    r"technically|safely|ever|be able to)\s+)*"
)
_IDIOM = (
    r"(?:wait|thank|complain|believe|imagine|stress|emphasi[sz]e|overstate|agree|"
    r"care less|go wrong|miss|beat|get enough|help but|help noticing|help myself|"
    r"help it|tell you how|say enough|resist|express|praise|recommend)\b"
)
_NEGATORS = re.compile(
    r"\b(?:not|never|no|nothing|none|neither|nor|unable|without|failed|tried|attempted)\b"
)
_PREFIX = (
    r"(?:(?:ok|okay|sure|alright|all right|great|perfect|yes|yep|yup|right|so|and|then|"
    r"also|just|now|good|got it|no problem|there we go|sure thing|certainly|all|"
    r"partially|fyi|note)\s+)*"
)
# After "is now", words that compare rather than report a change ("is now past the date").
_NOT_A_CHANGE = (
    r"(?:past|in the past|too|over|above|beyond|invalid|before|after|outside|more|less|"
    r"later|earlier|a duplicate)"
)
# States that explain a refusal ("it is now Closed-Won, so …") as often as they report one.
_STATE_WORDS = (
    r"(?:closed|closed-won|closed-lost|locked|read-only|frozen|expired|archived|inactive|"
    r"gone|won|lost|rejected|approved|signed|canceled|cancelled)"
)
_HISTORY = re.compile(
    r"\b(?:on \d|on (?:mon|tues|wednes|thurs|fri|satur|sun)day|in (?:19|20)\d\d|"
    r"last (?:week|month|year|quarter|time)|ago|earlier|previously|originally|"
    r"back in|yesterday|before (?:you|i|we|that|this|today))\b"
)


_WINDOW = 80  # characters around a cue that the negation/modal/history checks read


# == failure cues ================================================================
_FAILURE: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(p))
    for name, p in (
        # "I can't set …", "couldn't find …", "unable to …" — any verb but idioms.
        (
            "cannot",
            rf"\b(?:could not|can not|unable to|not able to|no longer able to)\s+{_FILL}"
            rf"(?!{_IDIOM}|be\b|have\b)[a-z]+",
        ),
        # "can't be modified", "couldn't be saved", "can't be found".
        (
            "cannot be done",
            rf"\b(?:can|could|will|would) not\s+{_FILL}be\s+{_FILL}"
            r"(?:[a-z]+ed|done|made|set|found|put|sent|written|taken|given|chosen|shown|"
            r"seen|kept|held|undone|met|paid|run|begun|redone)\b",
        ),
        ("unable", r"\bunable\b|\bnot (?:going to )?(?:be )?able to\b"),
        ("cannot be done", rf"\bcan not have (?:\w+\s+){{0,3}}?{_PART}\b"),
        # "didn't go through", "won't let me", "doesn't allow", "did not create".
        ("did not", rf"(?<!^)\b(?:did|does|do|will|would)\s+not\s+{_FILL}{_ACTION}\b"),
        ("did not", rf"^(?:did|does|will|would)\s+not\s+{_FILL}{_ACTION}\b"),
        # "was not created", "has not been applied", "haven't touched".
        (
            "not done",
            rf"\b(?:has|have|had|was|were|got)\s+not\s+(?:yet\s+|been\s+|actually\s+|"
            rf"successfully\s+|ever\s+)*(?:{_PART}|touched|changed|happened)\b",
        ),
        ("not done", rf"^{_PREFIX}not\s+(?:yet\s+)?(?:been\s+)?(?:{_PART}|done)\b"),
        ("not done", r"\bnot done\b"),
        ("not done", rf"\bnever\s+(?:been\s+|actually\s+)?(?:{_PAST}|{_PART}|went through)\b"),
        (
            "not possible",
            r"\bnot\s+(?:be\s+)?(?:possible|doable|feasible|an option|allowed|permitted|"
            r"authori[sz]ed)\b|\bimpossible\b|\bdisallowed\b|\bprohibited\b|\bforbidden\b",
        ),
        (
            "not possible",
            r"\b(?:that|this|it|which|\w+ing)\s+(?:\w+\s+)?(?:is|was|are)\s+not\s+"
            r"(?:supported|accepted)\b",
        ),
        ("failed", r"\b(?:failed|fails|failure|failing|errored)\b|\bfail to\b"),
        (
            "no luck",
            r"\b(?:no luck|no dice|no go|no-go|no can do|to no avail|without success|"
            r"unsuccessful(?:ly)?|came up empty|turned up (?:nothing|no)|"
            r"(?:crm|system) said no)\b",
        ),
        (
            "rejected",
            r"\b(?:crm|system|server|database|backend|api|validation|validator|tool|it)\s+"
            r"(?:has\s+|had\s+|just\s+)?(?:rejected|refused|declined|denied|blocked|bounced)\b",
        ),
        (
            "rejected",
            # passive, unless it is an entity's status ("the quote was rejected by …")
            r"(?<!\bquote )(?<!\bquotes )(?<!\bproposal )(?<!\boffer )(?<!\bbid )"
            r"(?<!\bcontract )(?<!\bdeal )(?<!\bopportunity )(?<!\binvoice )"
            r"(?<!\bclient )(?<!\bpayment )"
            r"\b(?:was|were|got|has been|have been|had been|is|are)\s+(?:also\s+)?"
            r"(?:rejected|refused|declined|denied|blocked)\b"
            r"(?!\s+by\s+(?:the\s+)?(?:client|customer|buyer|prospect|them|their|procurement|legal))",
        ),
        (
            "rejected",
            r"\b(?:rejected|refused|declined|denied|blocked)\s+(?:(?:the|my|your|this|that|our|an?)\s+)?"
            r"(?:\w+\s+)?(?:request|update|change|edit|value|date|amount|probability|email|"
            r"upload|operation|action|attempt|call|write|save|entry|input|submission|"
            r"modification|creation|deletion)\b|\b(?:rejected|refused|declined|denied)\s+"
            r"(?:it|that|this|them)\b|\brefused to\b|\brefusal\b|\b(?:request|update|change|"
            r"edit|upload|operation|action|attempt|write|save) (?:rejected|refused|declined|"
            r"denied|blocked)\b",
        ),
        (
            "decline",
            r"\b(?:have to|must|need to|will have to|going to have to)\s+(?:respectfully\s+)?"
            r"(?:decline|refuse|pass)\b|\bi (?:respectfully )?(?:decline|refuse)\b",
        ),
        ("error", r"\berrors?\b(?!-free)"),
        (
            "not found",
            r"\bnot found\b|\bno such\b|\bno longer exists?\b|\bnon-?existent\b|"
            r"\b(?:does|do|did) not (?:appear to |seem to )?exist\b|\bnot finding\b|"
            r"\bnot (?:in|on) (?:the|our|your) (?:crm|system|database|records?)\b|"
            r"\bno (?:record|entry|match|matches|results?|hits)\b|\bnowhere to be found\b|"
            r"\bnothing (?:came up|matched|matches|was found|found|turned up)\b|"
            r"\b(?:does|do) not match\b|\b(?:i|we) do not see\b",
        ),
        (
            "not found",
            rf"\bthere (?:is|are|was|were) (?:no|not an?|not any) (?:{_ENTITY}|such|matching|"
            rf"match)\b|\bno {_ENTITY} (?:named|called|with|matching|match|matches|by|found|"
            rf"exists?|under|titled|on file)\b|"
            rf"\b(?:i|we) (?:do|did) not (?:see|have) (?:a |an |any )?(?:{_ENTITY}|record)\b",
        ),
        (
            "not found",  # deleting what no longer exists
            r"\b(?:is|was|be|are) (?:already )?gone\b|\balready (?:been )?(?:deleted|removed)\b|"
            r"\b(?:deleted|removed) already\b|\bnothing (?:left )?to (?:delete|remove|cancel|"
            r"update|change|attach|edit)\b",
        ),
        (
            "nothing changed",
            r"\bno (?:changes?|updates?|edits?|modifications?|action|writes?)\b"
            r"(?!\s+(?:needed|required|necessary))|\bnothing (?:has |have |was |were |got |is )?"
            r"(?:been )?(?:changed|updated|saved|created|done|modified|deleted|written|"
            r"touched|applied|recorded|added|removed|uploaded|made|happened|moved|"
            r"generated)\b|\bnothing changed\b|\bdid nothing\b|\bmade no\b|"
            rf"\bno\s+(?:\w+\s+)?{_ENTITY}\s+(?:was|were|has been|have been|got)\s+{_PART}\b",
        ),
        (
            "nothing changed",  # "left it as it was", "the amount stays at 540,000"
            r"\bunchanged\b|\buntouched\b|\bexactly as it was\b|\bheld (?:off|back)\b|"
            r"\b(?:held|paused) (?:the |that |this )?(?:update|change|edit|upload|request)\b|"
            r"\bhold(?:ing)? off on\b|\bleft (?:it|them|the \w+(?: \w+)?) at\b|"
            r"\bleft (?:\w+\s+){0,3}?(?:as (?:it was|is|they were|it is)|alone|intact|as-is)\b|"
            r"\b(?:remains?|stays?|stayed|remained|is still|are still) (?:\w+\s+){0,2}?"
            r"(?:as (?:it was|is|before)|intact|the same)\b|"
            r"\b(?:stays?|stayed|remains?|remained) at\b|\bstill (?:has|have|shows|reads|"
            r"carries|keeps) (?:its|the|their) (?:original|previous|old|same|existing|current)\b",
        ),
        (
            "tried",
            r"\b(?:i|we) (?:have |had )?(?:tried|attempted)\b|\b(?:i|we) did try\b|"
            r"\bgave it a try\b|\bmy attempt\b|^tried\b",
        ),
        (
            "aborted",
            r"\b(?:cancel+ed|aborted|stopped|halted|rolled back|reverted|undid|discarded|"
            r"backed out of)\s+(?:the\s+|my\s+|that\s+|this\s+)?(?:update|change|operation|"
            r"request|action|attempt|edit|upload|write|save|creation|deletion)\b",
        ),
        (
            "beyond",
            r"\bnot something (?:i|we|the crm|the system) (?:can|could|am able|is able|"
            r"allows?|supports?|permits?)\b|\bnothing (?:more )?(?:i|we) (?:can|could) do\b|"
            r"\bnot much (?:i|we) (?:can|could) do\b|\b(?:beyond|outside) (?:what|the scope)\b|"
            r"\b(?:do|does) not have (?:the )?(?:permission|access|ability|rights?)\b|"
            r"\bno (?:permission|access)\b|\bhave to pass\b",
        ),
        ("cannot", r"\b(?:can|could|will|would|am|was) not\s*$"),
        ("cannot", r"^(?:unfortunately|sadly|sorry|afraid|i am afraid|i fear)?\s*not\s*$"),
    )
)
# Cues a nearby negation turns around ("no errors", "nothing failed").
_NEGATABLE = frozenset({"failed", "error", "rejected"})
# Cues about what someone else could not do ("they couldn't continue"), not the agent.
_THIRD_PARTY = frozenset({"cannot", "did not"})
_THIRD_PARTY_SUBJECT = re.compile(
    r"\b(?:they|he|she|who|client|customer|buyer|prospect|people|team|users?)\s+$"
)
_NEAR_NEGATION = re.compile(
    r"\b(?:no|not|never|nothing|without|zero|none|fixed|corrected|resolved|cleared)\s+"
    r"(?:\S+\s+){0,2}$"
)

# == weak cues: rule statements, counted only next to an apology ===============
_WEAK = re.compile(
    r"\bmust (?:not )?(?:be|have|include|exceed|contain)\b|\b(?:has|have|need|needs) to "
    r"(?:be|stay|include)\b|\bcan only be\b|\bonly (?:accepts?|allows?|supports?|takes?)\b|"
    r"\binvalid\b|\bnot (?:a )?valid\b|\bout of range\b|\bexceeds?\b|\b(?:over|above|beyond) "
    r"the (?:\S+ )?(?:limit|maximum|cap|ceiling)\b|\b(?:limit|maximum|cap|ceiling) (?:is|of)\b|"
    r"\btoo (?:high|large|big|low|small|early|late|long)\b|\bin the past\b|\b(?:has|have) "
    r"(?:already )?passed\b|\bbefore (?:the|its) start\b|\balready (?:exists?|in use|taken|"
    r"registered|used|on file|belongs)\b|\b(?:does|do) not belong\b|\b(?:is|are) (?:now |already )?"
    r"(?:closed|closed-won|closed-lost|locked|read-only|frozen)\b|\bclosed-(?:won|lost)\b|"
    r"\bcan not be (?:before|after|earlier|later|more|less|greater|higher|lower|above|below|"
    r"over|under|negative|zero|empty|blank|in)\b|\bnot (?:supported|accepted)\b|\bunsupported\b|"
    r"\bbetween \d+ and \d+\b|\bnot (?:an? )?(?:allowed|accepted|supported) (?:value|type|format|"
    r"extension)\b|\bduplicate\b|\blocked\b|\bcaps? (?:\w+ )?at\b|\bcapped at\b"
)
_HEDGE = re.compile(
    r"\b(?:sorry|unfortunately|afraid|apologi[sz]e|apologies|regrettably|alas|sadly|i fear)\b"
)

# == success claims ==============================================================
_SUCCESS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(p))
    for name, p in (
        (
            "done",
            rf"^{_PREFIX}(?:all\s+)?(?:done|sorted|finished|completed?|handled)\b(?!\s+(?:by|on))",
        ),
        (
            "done",
            r"\b(?:all|is|are|was|were|have|has|had|got (?:it|that|this|everything)|"
            r"get (?:it|that|this)) done\b",
        ),
        (
            "i did",
            rf"\b(?:i|we)\s+(?:have\s+|had\s+)?(?:(?:just|now|also|successfully|then|quickly|"
            rf"both|finally|since|each|all|gone ahead and|went ahead and)\s+)*{_PAST}\b"
            r"(?!\s+(?:no|nothing|none|zero|sure|certain|together|a mistake|an error|"
            r"the (?:update|change|operation|request|action|attempt|edit|upload)\b))",
        ),
        ("i did", rf"\b(?:i|we) did\s+(?!not\b){_FILL}{_ACTION}\b"),
        ("i did", rf"\b(?:was|were) able to\s+{_FILL}{_ACTION}\b|\bmanaged to\s+{_ACTION}\b"),
        ("i did", rf"\b(?:went|gone) ahead and\s+(?:{_ACTION}|{_PAST})\b"),
        (
            "crm did",
            r"\b(?:crm|system)\s+(?:has\s+)?(?:accepted|saved|applied|created|updated|recorded|"
            r"confirmed)\b",
        ),
        (
            "passive",
            rf"\b(?:has|have|had)\s+been\s+(?:(?:now|successfully|just|also|all)\s+)*{_PART}\b",
        ),
        (
            "passive",
            rf"\b(?:was|were|got|gets)\s+(?:(?:now|successfully|just|also|all)\s+)*{_PART}\b",
        ),
        ("passive", rf"\b(?:is|are)\s+(?:(?:now|successfully|just|also|all)\s+)*{_PART_IS}\b"),
        ("now", rf"\b(?:is|are) now\b(?!\s+{_NOT_A_CHANGE}\b)"),
        (
            "now",
            r"\bnow (?:shows?|reads?|lists?|sits? at|stands? at|says|runs|points|belongs|has)\b",
        ),
        ("now", rf"\b(?:is|are) (?!{_NOT_A_CHANGE}\b|{_STATE_WORDS}\b)(?:[\w-]+\s+){{0,3}}now$"),
        ("now", r"\b(?:is|are) (?:now )?in(?: the (?:crm|system))?(?: now)?$"),
        (
            "headline",
            # "Updated the stage", "Created opportunity X", "Set probability to 35 %"
            rf"^{_PREFIX}(?!rejected|declined)(?:{_PAST})(?!-)(?:\s*$|\s+(?!(?:{_ENTITY}|"
            r"ones?|items?|fields?|values?|data|stages?|dates?|amounts?|emails?|searches|by|"
            r"on|in|before|after|last|earlier|back|ago|of|won|lost|no|nothing|none|zero)\b))",
        ),
        (
            "headline",
            # "Quote created", "Stage changed to Proposal", "Contact added ✓"
            rf"^{_PREFIX}(?:(?!(?:is|are|was|were|be|been|being|has|have|had|can|could|will|"
            r"would|should|must|may|might|not|no|nothing|you|i|we|they|he|she|it|that|this|"
            rf"to|of|for|with|if|someone|somebody|nobody|anyone|everyone)\b)[\w#.@$%-]+\s+){{1,4}}"
            rf"{_PART}\b(?!\s+(?:it|them|the|a|an|this|that|these|those|his|her|their|my|your|"
            r"our)\b)(?!.*\b(?:is|are|was|were|has|have|had|can|could|will|would|must|does|do|"
            r"did|exceeds|needs)\b)",
        ),
        ("success", r"\bsuccess(?:ful|fully)?\b|\bsucceeded\b"),
        (
            "went through",
            r"\b(?:went|gone|goes) through(?=\s*(?:$|successfully|fine|ok|okay|without|now|"
            r"just fine|with no|cleanly))",
        ),
        (
            "all set",
            r"\b(?:all set|taken care of|took care of|good to go|squared away|sorted out)\b|"
            r"\b(?:it|that) worked\b",
        ),
        ("here is", r"\bhere is (?:the|your) (?:new|updated|revised|edited|created)\b"),
        (
            "instead",
            r"\b(?:i|we) (?:have )?(?!(?:tried|attempted|checked|looked|searched|kept|stopped|"
            r"wanted|needed|asked|suggested|recommended|proposed|offered|considered)\b)"
            r"(?:[a-z]+ed|set|put|made|chose|picked|took|gave|sent|used|went with)\b"
            r"(?=.*\binstead\b)",
        ),
    )
)
_PRE_MODAL = re.compile(
    r"\b(?:would|could|should|might|must|will|shall|can|may)\s+(?:have\s+)?(?:\S+\s+)?$|"
    r"\b(?:to|want|wants|wanted)\s+(?:have\s+)?$"
)
_PRIOR = re.compile(r"\b(?:already|previously|originally|earlier)\b")
_STATE_LIKE = re.compile(rf"\b{_STATE_WORDS}\b")
_CAUSAL = re.compile(r"^(?:so|therefore|hence|which|meaning|that means|thus)\b")
_CONDITIONAL = re.compile(r"^(?:if|unless|in case|whether|once|as long as|provided|otherwise)\b")
_REASON = re.compile(r"^(?:because|since|as|given|seeing|due to)\b")
_QUESTION_START = re.compile(
    r"^(?:would|should|shall|do|does|did|can|could|may|want|which|what|who|where|when|how|"
    r"is|are|will|have|has|anything|any)\b"
)


# == normalisation ===============================================================
_QUOTES = (
    re.compile(r"`([^`\n]*)`"),
    re.compile(r'"([^"\n]*)"'),
    re.compile(r"(?<![\w'])'((?:[^'\n]|'(?=\w))+?)'(?!\w)"),  # not an apostrophe
)
_REPORTING = re.compile(
    r"\b(?:crm|system|server|database|api|validation|error|rejected|refused|returned|"
    r"responded|answered)\b"
)
_CONTRACTIONS = (
    (re.compile(r"\b(?:can't|cannot|cant)\b"), "can not"),
    (re.compile(r"\b(?:won't|wont)\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"(\w)n't\b"), r"\1 not"),
    (
        re.compile(
            r"\b(could|did|does|do|is|was|were|would|should|has|have|had|are|must|need)nt\b"
        ),
        r"\1 not",
    ),
    (re.compile(r"'s been\b"), " has been"),
    (
        re.compile(
            r"\b(it|that|there|here|what|who|where|everything|nothing|this|he|she|which|"
            r"one)'s\b"
        ),
        r"\1 is",
    ),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'s\b"), ""),  # possessive
    (re.compile(r"'"), " "),
)
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:,\s+|\(|\)|\s+(?=(?:and|but|so|because|since|though|although|however|whereas|"
    r"while|which|then|unless|if|otherwise)\b))\s*"
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+|;\s*|:\s+|:$|\s+[-–—]+\s+|—|…")


@dataclass(frozen=True)
class Clause:
    """A normalised clause; questions and quotes are judged differently."""

    text: str
    question: bool = False
    quoted: bool = False


def _unquote(text: str) -> tuple[str, list[str]]:
    """Replace quoted spans by a neutral token; return the CRM-reported quotes apart."""
    reported: list[str] = []
    for pattern in _QUOTES:

        def keep(m: re.Match[str]) -> str:
            before = m.string[max(0, m.start() - 80) : m.start()]
            before = re.split(r"[.!?\n]\s", before)[-1]
            if _REPORTING.search(before.lower()):
                reported.append(m.group(1))
            return " qtx "

        text = pattern.sub(keep, text)
    return text, reported


def _normalise(text: str) -> str:
    text = text.lower()
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = re.sub(r"[*_#>]+", " ", text)
    text = re.sub(r"(?m)^\s*(?:[-+•]|\d+[.)])\s+", "\n", text)
    text = re.sub(r"(?<=\d)\s*[–—]\s*(?=\d)", "-", text)
    text = text.replace("→", " to ")
    return re.sub(r"[ \t]+", " ", text)


def _clauses(text: str, *, quoted: bool = False) -> list[Clause]:
    out: list[Clause] = []
    for sentence in _SENTENCE_SPLIT.split(text):
        parts = [p.strip(" .!,\"'") for p in _CLAUSE_SPLIT.split(sentence.strip())]
        parts = [p for p in parts if p]
        if not parts:
            continue
        asks = sentence.rstrip().endswith("?")
        whole = asks and bool(_QUESTION_START.match(parts[0]))
        for i, part in enumerate(parts):
            question = asks and (whole or i == len(parts) - 1)
            out.append(Clause(part.rstrip("?").strip(), question, quoted))
    return out


def _prepare(reply: str) -> list[Clause]:
    text = (
        reply.replace("“", '"')
        .replace("”", '"')
        .replace("«", '"')
        .replace("»", '"')
        .replace("‘", "'")
        .replace("’", "'")
        .replace("ʼ", "'")
    )
    text = re.sub(r"[✅✔☑✓]\ufe0f?", ". done. ", text)
    text = re.sub(r"[❌✖✗⛔🚫]\ufe0f?", ". failed. ", text)
    text, reported = _unquote(text)
    clauses = _clauses(_normalise(text))
    for quote in reported:
        clauses += _clauses(_normalise(quote), quoted=True)
    return clauses


# == analysis ====================================================================
@dataclass
class Analysis:
    """The cues found in a reply and the verdict they give (see the module rule)."""

    failure: list[str] = field(default_factory=list)
    success: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)
    hedge: bool = False

    @property
    def refused(self) -> bool:
        has_failure = bool(self.failure) or (self.hedge and bool(self.weak))
        return has_failure and not self.success


def _failure_cues(clause: Clause) -> list[str]:
    found = []
    for name, pattern in _FAILURE:
        for m in pattern.finditer(clause.text):
            before = clause.text[max(0, m.start() - _WINDOW) : m.start()]
            if name in _NEGATABLE and _NEAR_NEGATION.search(before):
                continue
            if name in _THIRD_PARTY and _THIRD_PARTY_SUBJECT.search(before):
                continue
            found.append(f"{name}: {m.group(0).strip()!r}")
            break
    return found


def _success_cues(clause: Clause) -> list[tuple[str, bool]]:
    """(cue, state_like) for each success claim in a clause."""
    text = clause.text
    if clause.question or clause.quoted or _REASON.match(text):
        return []
    negation = _NEGATORS.search(text)
    negated_from = negation.end() if negation else len(text) + 1
    prior = _PRIOR.search(text)
    prior_from = prior.end() if prior else len(text) + 1
    found = []
    for name, pattern in _SUCCESS:
        for m in pattern.finditer(text):
            if m.start() >= negated_from:
                break  # a negation earlier in the clause governs this and later matches
            if _PRE_MODAL.search(text[max(0, m.start() - _WINDOW) : m.start()]):
                continue
            after = text[m.end() : m.end() + _WINDOW]
            if name in ("passive", "headline", "now") and (
                m.start() >= prior_from or _HISTORY.search(after)
            ):
                continue
            state_like = name in ("passive", "now") and bool(_STATE_LIKE.search(after))
            found.append((f"{name}: {m.group(0).strip()!r}", state_like))
            break
    return found


def analyse(reply: str) -> Analysis:
    """The failure, weak and success cues of a reply, clause by clause."""
    result = Analysis()
    if not reply or not reply.strip():
        return result
    clauses = _prepare(reply)
    for i, clause in enumerate(clauses):
        if _CONDITIONAL.match(clause.text):
            continue
        result.failure += _failure_cues(clause)
        if not clause.question:
            result.weak += [m.group(0) for m in _WEAK.finditer(clause.text)]
        following = clauses[i + 1].text if i + 1 < len(clauses) else ""
        for cue, state_like in _success_cues(clause):
            # "It has been marked Closed-Won, so it can't be edited" explains a refusal.
            if state_like and _CAUSAL.match(following):
                continue
            result.success.append(cue)
    result.hedge = any(_HEDGE.search(c.text) for c in clauses)
    return result


def says_refused(reply: str) -> bool:
    """Whether the reply tells the user the request was not carried out (module rule)."""
    return analyse(reply).refused
