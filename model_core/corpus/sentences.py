"""Text for the synthetic voices, each sentence with its source recorded.

Two sources only, both ours to give away (CC0): sentences written for this project (English and the other
festival languages), and English sentences generated from templates and a word list with a seed. The Harvard
sentences are not used: they come from an IEEE publication whose copyright status we could not confirm.
The generated ones cover every English phone, bilabials in all vowel contexts and several sentence lengths.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

WRITTEN = "written for JambaTalk (CC0)"


@dataclass(frozen=True)
class Sentence:
    text: str
    language: str
    source: str


_WRITTEN: dict[str, tuple[str, ...]] = {
    "en": (
        "Bob bought a big blue map before lunch.", "My mother made apple pie for the whole family.",
        "Please pass the paper plates to Paul.", "The weather was warm, so we walked to the beach.",
        "Could you open the window a little more?", "I think the movie starts at seven thirty.",
        "She would rather read a book than watch television.", "Which way is the museum from here?",
        "Put the heavy box on the bottom shelf.", "Every morning he jogs around the park with his dog.",
        "Would you like some milk in your coffee?", "The children laughed at the funny puppet show.",
        "We measured the room twice before buying the rug.", "Thank you very much for your patience.",
        "Yes, I remember that old bridge by the mill.", "Oh no, the bus has already left!",
        "Judge the job by the results, not by the hours.", "A thousand voices sang in the cathedral.",
    ),
    "it": ("Buongiorno, come stai oggi?", "Mamma mia, la pizza è buonissima.", "Il bambino mangia una mela rossa.",
           "Domani andiamo al mare con gli amici.", "Per favore, parla più piano.", "La biblioteca apre alle nove."),
    "cs": ("Dobrý den, jak se máte?", "Maminka peče bábovku.", "Zítra pojedeme do Prahy vlakem.",
           "Na stole leží modrá kniha.", "Děkuji vám za pomoc.", "Pes běží po zahradě."),
    "fi": ("Hyvää huomenta, mitä kuuluu?", "Pieni poika ui järvessä.", "Äiti leipoo pullaa keittiössä.",
           "Huomenna sataa lunta.", "Kiitos paljon avusta.", "Bussi lähtee kello viisi."),
    "ru": ("Привет, как дела?", "Мама мыла раму.", "Завтра мы поедем в Москву.",
           "Большое спасибо за помощь.", "Папа купил новую машину.", "Кошка спит на окне."),
    "ca": ("Bon dia, com estàs?", "El gat menja peix.", "Demà anirem a la platja.",
           "Moltes gràcies per la teva ajuda.", "La mare prepara el sopar.", "Barcelona és una ciutat bonica."),
}

_SUBJECTS = ("the baker", "my brother", "a tall woman", "the old man", "our teacher", "the happy child", "Maria",
             "the pilot", "a young boy", "the mayor", "my neighbour", "the farmer")
_VERBS = ("bought", "moved", "painted", "opened", "found", "pushed", "watched", "fixed", "measured", "wrapped",
          "carried", "shared", "chose", "threw")
_OBJECTS = ("a blue boat", "the wooden box", "some warm bread", "the map", "a cheap umbrella", "the broken jug",
            "a bowl of soup", "the yellow chair", "both of the books", "a pumpkin", "the thick rope", "a zoo ticket")
_ENDINGS = ("in the morning", "before the rain", "with a smile", "near the bridge", "at the beach",
            "by the river", "after supper", "without a word", "for his mum", "on Thursday", "under the oak tree", "")


def written(language: str) -> list[Sentence]:
    """The hand-written sentences of one language (en, it, cs, fi, ru, ca)."""
    return [Sentence(t, language, WRITTEN) for t in _WRITTEN.get(language, ())]


def generated_english(n: int, seed: int = 0) -> list[Sentence]:
    """n English sentences from templates and a word list; the same seed gives the same sentences."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_ENDINGS)]
        text = " ".join(p for p in parts if p)
        text = text[0].upper() + text[1:] + rng.choice((".", ".", "!", "?"))
        out.append(Sentence(text, "en", f"generated: JambaTalk templates and word list, seed {seed} (CC0)"))
    return out


def languages() -> tuple[str, ...]:
    return tuple(_WRITTEN)
