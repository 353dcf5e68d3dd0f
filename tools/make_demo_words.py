#!/usr/bin/env python3
"""Writes model/demo/words.txt, the word list of the constructed demo model.

Usage: /usr/bin/python3 tools/make_demo_words.py [--wordnet /usr/share/wordnet]
                                                 [--out model/demo/words.txt]

Where the words come from (model/demo/README.md says the same):
- Content words (nouns, verbs, adjectives, adverbs) are WordNet 3.0 lemmas
  (Debian package wordnet-base), ranked by how often their senses are tagged
  in WordNet's semantic concordance (cntlist.rev: SemCor tag counts, a
  frequency list of ~200,000 words of the Brown corpus). Single lower-case
  ASCII words only; the most frequent are kept.
- Their part of speech is the one whose senses are tagged most often; a noun
  is animate when its most frequent sense (the first synset of index.noun)
  is a hyponym of person.n.01 or animal.n.01 (hypernym closure over
  data.noun).
- Irregular inflections of kept words (verb.exc, noun.exc, adj.exc: "went",
  "children") inherit their base word's tags.
- Function words, which WordNet does not hold (pronouns, determiners,
  auxiliaries, prepositions, conjunctions, the stems that BERT's basic
  tokenizer leaves of contractions: "didn" ' "t"), are listed by hand below,
  with a few everyday words the 1961 corpus lacks ("computer", "email") and
  a short deny list of slurs that it has.

Only the standard library; runs once, by hand. The build reads the output,
never WordNet.
"""
import argparse
import collections
import os
import re

# Hand-written closed classes: word -> tags. These win over WordNet's tags
# ("can" is a noun in WordNet, "a" is vitamin A, "us" the United States).
PRONOUNS_1_2 = "i me my mine myself you your yours yourself yourselves we us our ours ourselves"
# Third person: the coreference heads' triggers ("anaphor").
PRONOUNS_3 = ("he him his himself she her hers herself it its itself "
              "they them their theirs themselves")
DETERMINERS = ("the a an this that these those every each some any no another "
               "either neither all both")
AUXILIARIES = ("be am is are was were been being have has had having do does did "
               "done doing can could will would shall should may might must ought "
               # contraction stems: BERT splits "didn't" into didn ' t
               "didn doesn don isn wasn weren aren hasn haven hadn couldn wouldn "
               "shouldn won mustn needn shan ain")
FUNCTION = (
    # prepositions
    "of to in on at by for with from into onto over under about above below "
    "after before between through during without within along across behind "
    "beyond near around against among toward towards upon off out up down "
    "since until till than as like unlike via per "
    # conjunctions and subordinators
    "and or but nor so yet because although though while whereas if unless "
    "whether "
    # wh-words and adverbs that WordNet lacks or mistags
    "when where why how what which who whom whose whatever whoever whenever "
    "wherever there here then now not never also just only very too quite "
    "rather again still already even ever yes maybe perhaps please thanks "
    "hello goodbye oh okay ok "
    # what is left of other contractions: we'll, I've, you're, she'd, it's, I'm
    "ll ve re")
# Everyday words that a 1961 corpus does not know, and the pangram's.
EXTRA_NOUNS = ("computer computers internet email phone software website online "
               "video screen keyboard token tokens mat")
EXTRA_ANIMATE = "fox cat dog"
EXTRA_ADJ = "lazy"
# Slurs (the 1961 corpus has some): left to WordPiece's letters.
DENY = set("nigger negro bastard whore faggot fag dyke kike spic chink wop jap "
           "gook retard slut bitch cunt".split())


def read_counts(wordnet):
    """(lemma, pos) -> SemCor tag count, from cntlist.rev."""
    pos_of = {"1": "noun", "2": "verb", "3": "adj", "4": "adv", "5": "adj"}
    counts = collections.Counter()
    with open(os.path.join(wordnet, "cntlist.rev")) as f:
        for line in f:
            key, _, count = line.split()
            lemma, rest = key.split("%", 1)
            counts[(lemma, pos_of[rest[0]])] += int(count)
    return counts


def animate_synsets(wordnet):
    """Offsets of noun synsets under person.n.01 or animal.n.01."""
    hypernyms = {}
    with open(os.path.join(wordnet, "data.noun"), encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue  # the license header
            fields = line.split()
            offset, n_words = fields[0], int(fields[3], 16)
            i = 4 + 2 * n_words
            n_pointers = int(fields[i])
            ups = []
            for p in range(n_pointers):
                symbol, target = fields[i + 1 + 4 * p], fields[i + 2 + 4 * p]
                if symbol in ("@", "@i"):
                    ups.append(target)
            hypernyms[offset] = ups
    roots = {"00007846", "00015388"}  # person.n.01, animal.n.01
    memo = {}

    def is_animate(offset, depth=0):
        if offset in roots:
            return True
        if offset in memo or depth > 40:
            return memo.get(offset, False)
        memo[offset] = any(is_animate(h, depth + 1) for h in hypernyms.get(offset, []))
        return memo[offset]

    return {o for o in hypernyms if is_animate(o)}


def first_noun_sense(wordnet):
    """lemma -> offset of its most frequent noun sense (index.noun order)."""
    first = {}
    with open(os.path.join(wordnet, "index.noun"), encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split()
            first[fields[0]] = fields[-int(fields[2])]
    return first


def read_exceptions(wordnet):
    """(form, base, pos) of the irregular inflections."""
    out = []
    for name, pos in (("verb.exc", "verb"), ("noun.exc", "noun"), ("adj.exc", "adj")):
        with open(os.path.join(wordnet, name)) as f:
            for line in f:
                form, *bases = line.split()
                out.extend((form, base, pos) for base in bases)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wordnet", default="/usr/share/wordnet")
    parser.add_argument("--out", default="model/demo/words.txt")
    parser.add_argument("--min_count", type=int, default=9,
                        help="least SemCor tag count of a kept lemma")
    args = parser.parse_args()

    counts = read_counts(args.wordnet)
    animate = animate_synsets(args.wordnet)
    first_sense = first_noun_sense(args.wordnet)
    word = re.compile(r"^[a-z]+$")

    by_lemma = collections.defaultdict(dict)
    for (lemma, pos), n in counts.items():
        if word.match(lemma):
            by_lemma[lemma][pos] = by_lemma[lemma].get(pos, 0) + n
    tags = {}
    freq = {}
    for lemma, per_pos in by_lemma.items():
        total = sum(per_pos.values())
        if total < args.min_count or len(lemma) < 2 or lemma in DENY:
            continue  # single letters are in the vocab anyway, untagged
        pos = max(sorted(per_pos), key=lambda p: per_pos[p])
        t = [pos]
        if pos == "noun" and first_sense.get(lemma) in animate:
            t.append("animate")
        tags[lemma] = t
        freq[lemma] = total
    for form, base, pos in read_exceptions(args.wordnet):
        if word.match(form) and form not in DENY and base in tags and form not in tags and tags[base][0] == pos:
            tags[form] = list(tags[base])
            freq[form] = freq[base] // 2

    hand = {}
    for w in PRONOUNS_1_2.split():
        hand[w] = ["pronoun"]
    for w in PRONOUNS_3.split():
        hand[w] = ["pronoun", "anaphor"]
    for w in DETERMINERS.split():
        hand[w] = ["det"]
    for w in AUXILIARIES.split():
        hand[w] = ["verb"]
    for w in FUNCTION.split():
        hand.setdefault(w, ["function"])
    for w in EXTRA_NOUNS.split():
        hand.setdefault(w, ["noun"])
    for w in EXTRA_ANIMATE.split():
        hand[w] = ["noun", "animate"]
    for w in EXTRA_ADJ.split():
        hand.setdefault(w, ["adj"])
    # "people" is a group noun in WordNet (people.n.01), but people are
    # people.
    tags["people"] = ["noun", "animate"]

    lines = []
    for w in hand:
        lines.append((w, hand[w], "hand"))
    for w in sorted(tags, key=lambda w: (-freq[w], w)):
        if w not in hand:
            lines.append((w, tags[w], "wordnet"))
    with open(args.out, "w") as f:
        f.write(
            "# The constructed demo model's words: one per line, then its tags.\n"
            "# Made by tools/make_demo_words.py from WordNet 3.0 (Debian package\n"
            "# wordnet-base) and a hand-written list of function words; see\n"
            "# model/demo/README.md. Tags: noun verb adj adv animate pronoun\n"
            "# anaphor (third-person pronoun) det function.\n")
        for w, t, _ in lines:
            f.write(f"{w}\t{','.join(t)}\n")
    n_hand = sum(1 for _, _, s in lines if s == "hand")
    print(f"wrote {args.out}: {len(lines)} words ({n_hand} by hand, "
          f"{len(lines) - n_hand} from WordNet)")


if __name__ == "__main__":
    main()
