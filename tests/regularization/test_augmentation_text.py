"""dlcourse.regularization.augmentation.text: EDA operations on word lists."""

from collections import Counter

import pytest
import torch

from dlcourse.regularization.augmentation.text import (
    SYNONYMS,
    random_deletion,
    random_insertion,
    random_swap,
    synonym_replacement,
    word_shuffle,
)

SENTENCE = "the quick brown fox jumps over the lazy dog".split()
NO_SYNONYMS = "zyx wvu tsr".split()


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


OPS = {
    "shuffle": lambda w, g: word_shuffle(w, generator=g),
    "swap": lambda w, g: random_swap(w, n=2, generator=g),
    "synonyms": lambda w, g: synonym_replacement(w, n=2, generator=g),
    "insertion": lambda w, g: random_insertion(w, n=2, generator=g),
    "deletion": lambda w, g: random_deletion(w, p=0.3, generator=g),
}


@pytest.mark.parametrize("name", OPS)
def test_reproducible_seed_dependent_and_input_untouched(name):
    words = list(SENTENCE)
    a = OPS[name](words, _gen(1))
    assert words == SENTENCE  # the input list is not modified
    assert a == OPS[name](words, _gen(1))
    assert any(OPS[name](words, _gen(s)) != a for s in range(2, 6))
    assert all(isinstance(w, str) for w in a)


def test_shuffle_and_swap_are_permutations():
    for seed in range(20):
        assert Counter(word_shuffle(SENTENCE, generator=_gen(seed))) == Counter(
            SENTENCE
        )
        assert Counter(
            random_swap(SENTENCE, n=3, generator=_gen(seed))
        ) == Counter(SENTENCE)
    assert random_swap(SENTENCE, n=0) == SENTENCE


def test_shuffle_is_uniform_over_permutations_of_three_words():
    g = _gen()
    counts = Counter(
        tuple(word_shuffle(["a", "b", "c"], generator=g)) for _ in range(3000)
    )
    assert len(counts) == 6 and min(counts.values()) > 400


def test_synonym_replacement_keeps_length_and_uses_the_table():
    for seed in range(20):
        out = synonym_replacement(SENTENCE, n=2, generator=_gen(seed))
        assert len(out) == len(SENTENCE)
        changed = [(a, b) for a, b in zip(SENTENCE, out) if a != b]
        # the table never lists a word as its own synonym
        assert len(changed) == 2
        for old, new in changed:
            assert new in SYNONYMS[old]
    # n larger than the words with synonyms (quick, jumps, lazy, dog):
    # all four replaced
    out = synonym_replacement(SENTENCE, n=10, generator=_gen())
    assert sum(a != b for a, b in zip(SENTENCE, out)) == 4


def test_custom_table_and_case_insensitive_lookup():
    out = synonym_replacement(
        ["Big", "cat"], n=1, synonyms={"big": ("large",)}, generator=_gen()
    )
    assert out == ["large", "cat"]
    assert synonym_replacement(NO_SYNONYMS, n=3) == NO_SYNONYMS


def test_random_insertion_adds_n_synonyms_of_sentence_words():
    for seed in range(20):
        out = random_insertion(SENTENCE, n=3, generator=_gen(seed))
        assert len(out) == len(SENTENCE) + 3
        extra = Counter(out) - Counter(SENTENCE)
        assert sum(extra.values()) == 3
        # every inserted word is a synonym of a word present at the time
        allowed = {s for w in SENTENCE for s in SYNONYMS.get(w, ())}
        allowed |= {s2 for s in allowed for s2 in SYNONYMS.get(s, ())}
        assert set(extra) <= allowed
    assert (
        random_insertion(NO_SYNONYMS, n=3) == NO_SYNONYMS
    )  # nothing to insert


def test_random_deletion_counts():
    assert random_deletion(SENTENCE, p=0.0) == SENTENCE
    for seed in range(10):
        out = random_deletion(SENTENCE, p=1.0, generator=_gen(seed))
        assert len(out) == 1 and out[0] in SENTENCE  # never empty
    g = _gen(3)
    long = [f"w{i}" for i in range(1000)]
    kept = random_deletion(long, p=0.3, generator=g)
    assert len(kept) == pytest.approx(700, abs=50)
    # order is preserved: the survivors form a subsequence
    assert kept == [w for w in long if w in set(kept)]


BAD_CALLS = [
    (
        lambda: word_shuffle([]),
        ValueError,
        r"word_shuffle: 'words' must be a non-empty list of str "
        r"\(an empty sentence",
    ),
    (
        lambda: word_shuffle("a sentence"),
        TypeError,
        r"'words' must be a non-empty list of str",
    ),
    (
        lambda: random_swap(["a", 3]),
        TypeError,
        r"random_swap: 'words\[1\]' must be a str",
    ),
    (lambda: random_swap(["a"], n=-1), ValueError, r"'n' must be >= 0; got -1"),
    (
        lambda: synonym_replacement(["a"], n=1.5),
        TypeError,
        r"'n' must be an int",
    ),
    (
        lambda: synonym_replacement(["a"], synonyms=[("a", "b")]),
        TypeError,
        r"'synonyms' must be a dict",
    ),
    (
        lambda: random_insertion([], n=1),
        ValueError,
        r"random_insertion: 'words' must be a non-empty",
    ),
    (
        lambda: random_deletion(["a"], p=1.2),
        ValueError,
        r"random_deletion: 'p' must be in \[0, 1\]; got 1.2",
    ),
    (
        lambda: random_deletion(["a"], p=0.1, generator="seed"),
        TypeError,
        r"'generator' must be a torch.Generator or None",
    ),
]


@pytest.mark.parametrize("call, exc, match", BAD_CALLS)
def test_bad_arguments_are_rejected(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
