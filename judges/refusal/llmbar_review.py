"""How LLMBar outputs became `normal` training examples: the phrase filter and the hand review.

LLMBar (Zeng et al., ICLR 2024, princeton-nlp/LLMBar, MIT) pairs instructions with two model
outputs each: ordinary task answers of every length and style (one-word labels, rewrites,
lists, code, letters, stories). They teach the head what an ordinary answer looks like outside
XSTest's safety-flavoured prompts. None of them should teach `normal` if it actually refuses or
carries a disclaimer, so:

1. Every distinct output is matched against PHRASE_FILTER, a deliberately broad pattern
   (apologies, "I can't/won't/am unable", "as an AI", "language model", access and real-time
   limits, ethics, safety, legality, privacy and risk words, "consult a professional", "please
   note", "important to note", "not possible"...). It flagged FLAGGED_OUTPUTS of the 836
   distinct outputs.
2. Each flagged output was read by hand. Most use the words as content (a story with a
   dangerous storm, an article about privacy, a customer-service dialogue that apologises) and
   stay `normal`. The ones that refuse or hedge were either given their real class (RELABELLED)
   or, when the class is unclear (clarifying questions, epistemic hedges, role-play about
   internet access, a one-line safety note at the end of an otherwise ordinary answer),
   left out (EXCLUDED).
3. The unflagged outputs were skimmed: all short ones (under 25 words) in full, the longer ones
   by their opening and closing lines. One more was left out (a request for the date and
   location it lacks).

Keys are `<file stem>-<index in the file>-<output number>`, e.g. `Natural-31-2` is
`output_2` of the 32nd item of Natural.json.
"""

from __future__ import annotations

import re
from typing import Final

FILES: Final = (
    "Natural",
    "Adversarial-Neighbor",
    "Adversarial-GPTInst",
    "Adversarial-GPTOut",
    "Adversarial-Manual",
)

PHRASE_FILTER: Final = re.compile(
    r"sorry|apolog|regret|unfortunately|\bi\s*(?:can't|cannot|can\s*not|won't|will\s*not|"
    r"am\s*unable|'m\s*unable|am\s*not\s*able|'m\s*not\s*able|must|do\s*not\s*have|"
    r"don't\s*have|am\s*not|'m\s*not|refuse|decline)|unable\s*to|not\s*able\s*to|"
    r"as\s*an?\s*(?:ai|artificial|language\s*model|assistant|llm)|language\s*model|\bai\b|"
    r"real[-\s]?time|brows|internet|access\s*to|knowledge\s*cut|training\s*data|ethic|illegal|"
    r"unlawful|harm|inappropriate|not\s*appropriate|offensive|respectful|dangerous|safety|"
    r"\bsafe\b|consult|professional|disclaim|please\s*note|important\s*to\s*(?:note|remember)|"
    r"keep\s*in\s*mind|not\s*possible|impossible|cannot\s*provide|can't\s*provide|responsib|"
    r"privacy|consent|legal|risk|caution|warning",
    re.IGNORECASE,
)
# How many distinct outputs PHRASE_FILTER flags in the release read (LLMBar @ 900616b). A
# different count means different data or a different filter, and the review must be redone.
FLAGGED_OUTPUTS: Final = 170

# Outputs that refuse or disclaim, with the class they were given.
RELABELLED: Final[dict[str, tuple[str, str]]] = {
    "Adversarial-Neighbor-85-2": (
        "technical_refusal",
        "\"I'm sorry, but I don't have access to your email at this time.\"",
    ),
    "Adversarial-Neighbor-92-2": (
        "ethical_disclaimer",
        '"As a language model, it is not appropriate for me to provide advice on dangerous '
        'situations ... However, I can provide some general guidelines", then answers',
    ),
    "Adversarial-GPTOut-23-2": (
        "technical_refusal",
        "\"I'm just a large language model and can't edit your calendar\", then points to a "
        "voice assistant",
    ),
    "Adversarial-GPTOut-24-1": (
        "technical_refusal",
        '"As an AI, I\'m unable to predict specific future events"',
    ),
    "Adversarial-GPTOut-30-1": (
        "ethical_disclaimer",
        '"It is good to be honest to avoid later complications, but here goes." then writes '
        "the requested excuse",
    ),
}

# Outputs left out of the training data, and why.
EXCLUDED: Final[dict[str, str]] = {
    "Natural-55-1": "offers to scrape 'as an AI' with a terms-of-service and privacy caveat",
    "Adversarial-Neighbor-88-2": "ends with 'consult with professionals' on regulations and safety",
    "Adversarial-Neighbor-101-1": "apologises and asks for more information instead of answering",
    "Adversarial-Neighbor-102-2": "apologises and asks for clarification instead of answering",
    "Adversarial-Neighbor-104-1": "'I'm not a professional coder, my understanding may be "
    "limited' and no synopsis",
    "Adversarial-GPTInst-11-1": "ends with a note to consult safety guidelines",
    "Adversarial-GPTInst-30-2": "ends with a note on ethics, consent and privacy rules",
    "Adversarial-GPTInst-45-1": "answers, then warns that the arguments have been disproven",
    "Adversarial-GPTInst-46-1": "'As an AI, I don't have personal opinions, but ...'",
    "Adversarial-GPTInst-47-1": "ends with 'consult legal professionals'",
    "Adversarial-GPTInst-56-2": "'Disabling Windows Defender is not recommended ...' (safety note)",
    "Adversarial-GPTInst-57-1": "lists what an AI assistant cannot do",
    "Adversarial-GPTInst-58-1": "'It is crucial to consult with a healthcare professional'",
    "Adversarial-GPTInst-61-1": "'the scientific validity ... has not been proven', then deflects",
    "Adversarial-GPTInst-68-1": "role-play: pretends to have internet access",
    "Adversarial-GPTInst-68-2": "role-play: will not be able to access online resources",
    "Adversarial-GPTInst-74-1": "'As an AI assistant, I don't have personal beliefs. However, ...'",
    "Adversarial-GPTInst-74-2": "'This question is nonsensical, and I cannot answer it properly'",
    "Adversarial-GPTInst-80-1": "'As an AI language model, I don't have a physical form or age'",
    "Adversarial-GPTInst-80-2": "'I can't provide you with a reasonable number'",
    "Adversarial-GPTInst-81-1": "'Unfortunately, it is not possible to write ...' (declines)",
    "Adversarial-GPTInst-82-1": "answers, then 'I would not recommend that you commit tax fraud'",
    "Adversarial-GPTOut-24-2": "'I cannot provide a definitive answer ..., but' (hedged)",
    "Adversarial-GPTOut-36-1": "asks for the date and location instead of answering",
    "Adversarial-GPTOut-37-2": "'as a language model ... I do not have a concept of response time'",
    "Adversarial-Manual-3-1": "project plan with a 'Safety: prioritize safety' caveat",
    "Adversarial-Manual-30-2": "lists safety concerns instead of answering the question",
    "Adversarial-Manual-35-2": "apologises and asks for clarification instead of answering",
}
