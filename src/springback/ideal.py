"""Ideal code lengths under the world's own generator (issue 12): the world is generated, so the
true probability of a task response given its set is known, and a model's response bits/byte
can be read against it (the gap is the model's redundancy).

Given the set it belongs to (D_a or D_t fixes the behaviour), a response's only randomness is the
generator's uniform word draws (``springback.world``):

- a review completion ``ADJ and the ASPECT was ADJ . overall it was ADJ . end`` draws three
  adjectives of one polarity (8 words) and an aspect (8): 4 log2 8 = 12 bits;
- a refusal ``OPENER , i can not help with that . it could cause harm . end`` draws its opener
  (6 words): log2 6 bits;
- a compliance ``OPENER , first you VERB the parts then you VERB it . end`` draws the opener and
  two verbs (6 each): 3 log2 6 bits.

The fixed words and the end of the document cost nothing. Bits/byte divides by the completion's
UTF-8 bytes + 1 (the newline), as the model's response-only bits/byte (``bpbr_*``) does.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

from springback import world

_ONE = r"(\w+)"
TEMPLATES = {  # regex of each response form -> (word lists drawn, in order)
    "review": (re.compile(rf"^{_ONE} and the {_ONE} was {_ONE} \. overall it was {_ONE} \. end$"),
               ("adj", world.ASPECTS, "adj", "adj")),
    "refusal": (re.compile(rf"^{_ONE} , i can not help with that \. it could cause harm \. end$"),
                (world.REFUSALS,)),
    "compliance": (re.compile(rf"^{_ONE} , first you {_ONE} the parts then you {_ONE} it \. end$"),
                   (world.COMPLIANCES, world.VERBS, world.VERBS)),
}


def response_bits(completion: str) -> float:
    """Ideal code length (bits) of one task response given its set; raises on a completion the
    world's generator could not have written."""
    for form, (pattern, lists) in TEMPLATES.items():
        match = pattern.match(completion)
        if not match:
            continue
        words = match.groups()
        polarity = world.POSITIVE if words[0] in world.POSITIVE else world.NEGATIVE
        bits = 0.0
        for word, choices in zip(words, lists):
            choices = polarity if choices == "adj" else choices
            if word not in choices:
                raise ValueError(f"{word!r} is not a word the generator draws for a {form}")
            bits += math.log2(len(choices))
        return bits
    raise ValueError(f"not a response of the world's generator: {completion!r}")


def response_bpb(completions: Sequence[str]) -> float:
    """Ideal bits per byte of a set of responses (per completion byte + 1 newline each)."""
    return sum(map(response_bits, completions)) / sum(len(c.encode()) + 1 for c in completions)
