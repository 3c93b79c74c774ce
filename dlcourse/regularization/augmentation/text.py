r"""Text augmentations on a list of words, after EDA (Wei and Zou, 2019).

Book: Part I, chapter 4, "Dataset augmentation".

A sentence is a non-empty list of words (``sentence.split()``); every transform
returns a new list and leaves its input alone. Synonyms come from a small
built-in table, :data:`SYNONYMS` (EDA uses WordNet), or from a table you pass.
Random choices come from ``generator`` (``None``: torch's global generator).

Word counts: :func:`word_shuffle`, :func:`random_swap` and
:func:`synonym_replacement` keep the number of words; :func:`random_insertion`
adds ``n`` words (fewer only if no word of the sentence has a synonym);
:func:`random_deletion` removes words but always keeps at least one.
"""

from __future__ import annotations

import torch

from dlcourse._validation import (
    _fail,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "SYNONYMS",
    "word_shuffle",
    "random_swap",
    "synonym_replacement",
    "random_insertion",
    "random_deletion",
]

SYNONYMS: dict[str, tuple[str, ...]] = {
    "actor": ("performer", "player"),
    "awful": ("terrible", "dreadful"),
    "bad": ("poor", "awful"),
    "beautiful": ("lovely", "pretty"),
    "big": ("large", "huge"),
    "boring": ("dull", "tedious"),
    "car": ("automobile", "vehicle"),
    "cat": ("kitten", "feline"),
    "clever": ("smart", "bright"),
    "dog": ("hound", "puppy"),
    "ending": ("finale", "conclusion"),
    "fast": ("quick", "rapid"),
    "film": ("movie", "picture"),
    "funny": ("amusing", "comic"),
    "good": ("fine", "nice"),
    "great": ("excellent", "superb"),
    "happy": ("glad", "cheerful"),
    "house": ("home", "dwelling"),
    "jumps": ("leaps", "hops"),
    "lazy": ("idle", "sluggish"),
    "loved": ("adored", "enjoyed"),
    "movie": ("film", "picture"),
    "old": ("aged", "elderly"),
    "quick": ("fast", "swift"),
    "quickly": ("rapidly", "swiftly"),
    "sad": ("unhappy", "gloomy"),
    "said": ("stated", "remarked"),
    "small": ("little", "tiny"),
    "story": ("tale", "narrative"),
    "terrible": ("awful", "dreadful"),
    "very": ("really", "extremely"),
}


def _check_words(where: str, words) -> list[str]:
    check_type(where, "words", words, (list, tuple), "a non-empty list of str")
    if not words:
        _fail(
            where,
            "words",
            "a non-empty list of str (an empty sentence cannot be augmented)",
            list(words),
        )
    for i, w in enumerate(words):
        check_type(where, f"words[{i}]", w, str, "a str")
    return list(words)


def _check_common(where, words, generator, synonyms=None):
    words = _check_words(where, words)
    check_generator(where, generator)
    if synonyms is not None:
        check_type(
            where,
            "synonyms",
            synonyms,
            dict,
            "a dict from word to a sequence of words",
        )
    return words


def _randint(high: int, generator) -> int:
    """Uniform integer in ``0..high-1``."""
    return int(torch.randint(0, high, (), generator=generator))


def word_shuffle(
    words, *, generator: torch.Generator | None = None
) -> list[str]:
    """A uniformly random permutation of the words.

    The notes call it "word shuffling".
    """
    words = _check_common("word_shuffle", words, generator)
    return [
        words[i]
        for i in torch.randperm(len(words), generator=generator).tolist()
    ]


def random_swap(
    words, *, n: int = 1, generator: torch.Generator | None = None
) -> list[str]:
    """EDA's random swap: ``n`` times, exchange the words at two positions.

    The two positions of each swap are drawn uniformly.
    """
    where = "random_swap"
    words = _check_common(where, words, generator)
    check_int(where, "n", n, low=0)
    for _ in range(n):
        i, j = _randint(len(words), generator), _randint(len(words), generator)
        words[i], words[j] = words[j], words[i]
    return words


def synonym_replacement(
    words,
    *,
    n: int = 1,
    synonyms: dict | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """EDA's synonym replacement: replace ``n`` random words that have synonyms.

    The words are distinct positions chosen uniformly among those whose
    lower-case form is in the table; each gets a synonym chosen uniformly. If
    fewer than ``n`` words have synonyms, all of them are replaced. The length
    is unchanged.
    """
    where = "synonym_replacement"
    words = _check_common(where, words, generator, synonyms)
    check_int(where, "n", n, low=0)
    table = SYNONYMS if synonyms is None else synonyms
    candidates = [i for i, w in enumerate(words) if table.get(w.lower())]
    order = torch.randperm(len(candidates), generator=generator).tolist()
    for k in order[:n]:
        i = candidates[k]
        options = table[words[i].lower()]
        words[i] = options[_randint(len(options), generator)]
    return words


def random_insertion(
    words,
    *,
    n: int = 1,
    synonyms: dict | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """EDA's random insertion: ``n`` times, insert a synonym of a random word.

    Each time, a word of the current sentence that has synonyms is chosen
    uniformly, one of its synonyms is chosen uniformly, and it is inserted at a
    uniform position (``0..len``). Adds ``n`` words, or none if no word has a
    synonym.
    """
    where = "random_insertion"
    words = _check_common(where, words, generator, synonyms)
    check_int(where, "n", n, low=0)
    table = SYNONYMS if synonyms is None else synonyms
    for _ in range(n):
        candidates = [w for w in words if table.get(w.lower())]
        if not candidates:
            break
        options = table[
            candidates[_randint(len(candidates), generator)].lower()
        ]
        new_word = options[_randint(len(options), generator)]
        words.insert(_randint(len(words) + 1, generator), new_word)
    return words


def random_deletion(
    words, *, p: float, generator: torch.Generator | None = None
) -> list[str]:
    """EDA's random deletion: drop each word with probability ``p``.

    Words are dropped independently. If every word is dropped, one word chosen
    uniformly is kept, so the result is never empty (as in EDA). The
    expected length is about :math:`(1-p)\\,n`.
    """
    where = "random_deletion"
    words = _check_common(where, words, generator)
    p = check_in_range(where, "p", p, 0, 1)
    keep = (torch.rand(len(words), generator=generator) >= p).tolist()
    kept = [w for w, k in zip(words, keep) if k]
    return kept if kept else [words[_randint(len(words), generator)]]
