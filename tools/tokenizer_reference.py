#!/usr/bin/python3
"""Expected outputs for tests/tokenizer_test.cc, made without the C++ code.

The tokens come from a plain transcription of Google's BERT tokenization.py
(github.com/google-research/bert: BasicTokenizer + WordpieceTokenizer, with
`_is_control` = Cc, Cf, Co as in Hugging Face's tokenizers, see is_control) on
Python's own `unicodedata`, lower-casing each character alone as Hugging Face's
tokenizers do (see lower_chars). The offsets come
from a second, separate pass that carries each character's source bytes
through the same steps; its tokens must equal the transcription's, or the
script stops. [CLS]/[SEP], token types and "longest_first" truncation follow
Hugging Face transformers' `build_inputs_with_special_tokens`,
`create_token_type_ids_from_sequences` and `truncate_sequences` (its
closed-form split). Standard library only; run with Debian's /usr/bin/python3.

From the repo root:

  /usr/bin/python3 tools/tokenizer_reference.py expect \\
      tests/data/tokenizer/vocab.txt tests/data/tokenizer/inputs.json \\
      > tests/data/tokenizer/expected.json
  /usr/bin/python3 tools/tokenizer_reference.py tokenizer-json \\
      tests/data/tokenizer/vocab.txt --cased \\
      > tests/data/tokenizer/json/tokenizer.json

inputs.json is a list of cases {"name", "text" | "text_hex", optional
"text_pair" | "text_pair_hex", "lower" (default true), "max_length" (default
512), "truncate" (default false)} plus {"random": count, "seed": s, ...} items
that expand to seeded random cases (see random_cases). expected.json holds
{"unicode_version", "cases": [...]}: each case as given (random ones
expanded, texts as "text" or, when not valid UTF-8, "text_hex") and either
"ids", "tokens", "type_ids", "offsets" (byte [start, end) in its own text,
[0, 0] for specials) or "error": {"code": "InvalidArgument", "which":
"text" | "text_pair", "offset": byte} for invalid UTF-8, or {"code":
"InvalidArgument", "length": n, "limit": max_length} for a too-long input.

Python's unicodedata may be an older Unicode version than utf8proc's (14.0 vs
15.0 on Debian 12): the cases use no code point whose properties changed.
"""

import json
import random
import sys
import unicodedata

UNK, CLS, SEP = "[UNK]", "[CLS]", "[SEP]"
MAX_WORD_CHARS = 100


# ---- Transcription of tokenization.py ---------------------------------------

def load_vocab(path):
    """Token -> id, id = line number; later duplicates win, as in BERT."""
    vocab = {}
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for index, line in enumerate(lines):
        vocab[line.rstrip("\r")] = index
    return vocab


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    """Cc, Cf, Co (and Cs), as Hugging Face's tokenizers define it (is_other of the
    unicode_categories crate). Google's tokenization.py also drops unassigned code
    points (Cn); Hugging Face keeps them, so they become [UNK] or part of a word."""
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese_char(cp):
    ranges = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
              (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
              (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    return any(lo <= cp <= hi for lo, hi in ranges)


def clean_text(text):
    out = []
    for ch in text:
        if ord(ch) in (0, 0xFFFD) or is_control(ch):
            continue
        out.append(" " if is_whitespace(ch) else ch)
    return "".join(out)


def space_chinese_chars(text):
    return "".join(" %s " % ch if is_chinese_char(ord(ch)) else ch
                   for ch in text)


def strip_accents(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text)
                   if unicodedata.category(ch) != "Mn")


def split_on_punctuation(text):
    words = []
    new_word = True
    for ch in text:
        if is_punctuation(ch):
            words.append(ch)
            new_word = True
        else:
            if new_word:
                words.append("")
            new_word = False
            words[-1] += ch
    return words


def basic_tokenize(text, lower):
    text = space_chinese_chars(clean_text(text))
    pieces = []
    for word in text.strip().split():
        if lower:
            word = strip_accents(lower_chars(word))
        pieces.extend(split_on_punctuation(word))
    return " ".join(pieces).strip().split()


def wordpiece(word, vocab):
    if len(word) > MAX_WORD_CHARS:
        return [UNK]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            candidate = ("##" if start > 0 else "") + word[start:end]
            if candidate in vocab:
                found = candidate
                break
            end -= 1
        if found is None:
            return [UNK]
        pieces.append(found)
        start = end
    return pieces


def bert_tokenize(text, lower, vocab):
    return [p for w in basic_tokenize(text, lower) for p in wordpiece(w, vocab)]


# ---- Offsets: the same steps on (character, begin, end) triples -------------

def source_chars(text):
    """[(ch, byte_begin, byte_end)] of `text`."""
    out, pos = [], 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        out.append((ch, pos, pos + n))
        pos += n
    return out


def lower_chars(word):
    """Lower-cases character by character, as Hugging Face's tokenizers do (Rust's
    char::to_lowercase): no context, so a word-final capital sigma becomes "σ", not
    the "ς" of Python's whole-string str.lower() (Google's tokenization.py). The
    server follows Hugging Face: that is what transformers runs by default."""
    return "".join(ch.lower() for ch in word)


def lower_with_sources(word):
    out = []
    for ch, b, e in word:
        out.extend((c, b, e) for c in ch.lower())
    return out


def nfd_with_sources(word):
    out = []
    for ch, b, e in word:
        out.extend((c, b, e) for c in unicodedata.normalize("NFD", ch))
    # Canonical ordering: bubble non-starters by combining class.
    changed = True
    while changed:
        changed = False
        for i in range(1, len(out)):
            prev, cur = (unicodedata.combining(out[i - 1][0]),
                         unicodedata.combining(out[i][0]))
            if cur != 0 and prev > cur:
                out[i - 1], out[i] = out[i], out[i - 1]
                changed = True
    whole = unicodedata.normalize("NFD", "".join(ch for ch, _, _ in word))
    assert "".join(ch for ch, _, _ in out) == whole
    return out


def words_with_sources(text, lower):
    """The basic tokens as lists of (ch, begin, end)."""
    words, word = [], []
    def flush():
        if word:
            words.append(list(word))
            word.clear()
    for ch, b, e in source_chars(text):
        if ord(ch) in (0, 0xFFFD) or is_control(ch):
            continue
        if is_whitespace(ch) or ch.isspace():
            flush()
        elif is_chinese_char(ord(ch)):
            flush()
            words.append([(ch, b, e)])
        else:
            word.append((ch, b, e))
    flush()
    out = []
    for w in words:
        if lower:
            w = [c for c in nfd_with_sources(lower_with_sources(w))
                 if unicodedata.category(c[0]) != "Mn"]
        current = []
        for c in w:
            if is_punctuation(c[0]):
                if current:
                    out.append(current)
                out.append([c])
                current = []
            else:
                current.append(c)
        if current:
            out.append(current)
    return out


def span(chars):
    return [min(b for _, b, _ in chars), max(e for _, _, e in chars)]


def tokenize_with_offsets(text, lower, vocab):
    """[(token, [begin, end])]."""
    out = []
    for word in words_with_sources(text, lower):
        pieces = wordpiece("".join(ch for ch, _, _ in word), vocab)
        if pieces == [UNK]:
            out.append((UNK, span(word)))
            continue
        pos = 0
        for p in pieces:
            n = len(p) - (2 if p.startswith("##") and pos > 0 else 0)
            out.append((p, span(word[pos:pos + n])))
            pos += n
        assert pos == len(word)
    assert [t for t, _ in out] == bert_tokenize(text, lower, vocab)
    return out


# ---- Encoding ---------------------------------------------------------------

def truncate_longest_first(a, b, remove):
    """transformers' closed-form longest_first split of `remove` tokens (its
    Python tokenizers; the Rust ones give B, not A, the odd token of a tie)."""
    if b is None:
        return a[:len(a) - remove], None
    first = min(abs(len(b) - len(a)), remove)
    second = remove - first
    if len(a) > len(b):
        from_a, from_b = first + second // 2, second - second // 2
    else:
        from_a, from_b = second // 2, first + second - second // 2
    return a[:len(a) - from_a], b[:len(b) - from_b]


def encode(case, vocab):
    # Checked before decoding, as the C++ does.
    specials = 3 if case["text_pair_bytes"] else 2
    if case["max_length"] < specials:
        return {"error": {"code": "InvalidArgument",
                          "limit": case["max_length"], "specials": specials}}
    texts = {}
    for which in ("text", "text_pair"):
        raw = case.get(which + "_bytes", b"")
        try:
            texts[which] = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return {"error": {"code": "InvalidArgument", "which": which,
                              "offset": e.start}}
    a = tokenize_with_offsets(texts["text"], case["lower"], vocab)
    b = (tokenize_with_offsets(texts["text_pair"], case["lower"], vocab)
         if texts["text_pair"] else None)
    length = len(a) + (len(b) if b else 0) + specials
    if length > case["max_length"]:
        if not case["truncate"]:
            return {"error": {"code": "InvalidArgument", "length": length,
                              "limit": case["max_length"]}}
        a, b = truncate_longest_first(a, b, length - case["max_length"])
    seq = [(CLS, [0, 0], 0)] + [(t, o, 0) for t, o in a] + [(SEP, [0, 0], 0)]
    if b is not None:
        seq += [(t, o, 1) for t, o in b] + [(SEP, [0, 0], 1)]
    return {"ids": [vocab[t] for t, _, _ in seq],
            "tokens": [t for t, _, _ in seq],
            "type_ids": [ty for _, _, ty in seq],
            "offsets": [o for _, o, _ in seq]}


# ---- Random cases -----------------------------------------------------------

# Characters the random cases draw from: one of each kind that matters, all
# with the same properties in Unicode 14 and 15.
POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") +
        list(" \t\n\r.,!?-'\"()[]$^`#@_") +
        ["\u00a0", "\u2028", "\u3000", "\x01", "\x00", "\ufffd", "\u200b",
         "\u00ad", "\u0301", "\u0323", "\u0308", "\u00e9", "\u00c5", "\u00df",
         "\u0130", "\u03a3", "\u03c2", "\u03b1", "\u0391", "\u4e2d", "\u6587",
         "\ud55c", "\U0001f600", "\u00a9", "\u20ac", "\u2211", "\u00bf",
         "\u2014", "\u00ab", "\u1e09", "\u00aa", "\u0345", "\u2160",
         "\uff21", "\u0627"])


def random_cases(item):
    rng = random.Random(item["seed"])
    cases = []
    for i in range(item["random"]):
        kind = item.get("kind", "text")
        case = {"name": "%s%d" % (item["prefix"], i)}
        if kind == "text":
            n = rng.randint(0, 24)
            case["text"] = "".join(rng.choice(POOL) for _ in range(n))
            case["lower"] = rng.random() < 0.7
        elif kind == "pair":
            words = ["hello", "world", "the", "cafe", "a", "b", "!"]
            case["text"] = " ".join(rng.choice(words)
                                    for _ in range(rng.randint(0, 9)))
            case["text_pair"] = " ".join(rng.choice(words)
                                         for _ in range(rng.randint(1, 9)))
            case["max_length"] = rng.randint(3, 14)
            case["truncate"] = True
        elif kind == "bytes":
            # Whole characters, their truncated prefixes and lone bytes that
            # can never start a character.
            chunks = [c.encode("utf-8") for c in "a é€😀"]
            chunks += [c[:k] for c in chunks for k in range(1, len(c))]
            chunks += [bytes([b]) for b in (0x80, 0xBF, 0xC0, 0xC1, 0xF5,
                                            0xFF)]
            chunks += [bytes.fromhex(h) for h in ("eda080", "e080af",
                                                  "f4908080", "f08282ac")]
            raw = b"".join(rng.choice(chunks[:5]) for _ in
                           range(rng.randint(0, 4)))
            raw += b"".join(rng.choice(chunks) for _ in
                            range(rng.randint(1, 4)))
            case["text_hex"] = raw.hex()
        cases.append(case)
    return cases


def normalize_case(case):
    case = dict(case)
    for which in ("text", "text_pair"):
        if which + "_hex" in case:
            raw = bytes.fromhex(case.pop(which + "_hex"))
        else:
            raw = case.pop(which, "").encode("utf-8")
        case[which + "_bytes"] = raw
    case.setdefault("lower", True)
    case.setdefault("max_length", 512)
    case.setdefault("truncate", False)
    return case


def printable(case):
    out = {"name": case["name"]}
    for which in ("text", "text_pair"):
        raw = case[which + "_bytes"]
        if which == "text_pair" and not raw:
            continue
        try:
            out[which] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out[which + "_hex"] = raw.hex()
    for key in ("lower", "max_length", "truncate"):
        out[key] = case[key]
    return out


def expect(vocab_path, inputs_path):
    vocab = load_vocab(vocab_path)
    with open(inputs_path, encoding="utf-8") as f:
        items = json.load(f)
    cases = []
    for item in items:
        cases.extend(random_cases(item) if "random" in item else [item])
    names = set()
    out = []
    for case in map(normalize_case, cases):
        assert case["name"] not in names, case["name"]
        names.add(case["name"])
        result = printable(case)
        result.update(encode(case, vocab))
        out.append(result)
    doc = {"unicode_version": unicodedata.unidata_version, "cases": out}
    # One case per line keeps diffs readable.
    sys.stdout.write('{"unicode_version": %s,\n "cases": [\n' %
                     json.dumps(doc["unicode_version"]))
    sys.stdout.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in out))
    sys.stdout.write("\n]}\n")


def tokenizer_json(vocab_path, lowercase):
    """A Hugging Face tokenizer.json (as BertTokenizerFast saves it) with the
    WordPiece vocab of `vocab_path`."""
    vocab = load_vocab(vocab_path)
    doc = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": True,
                       "handle_chinese_chars": True, "strip_accents": None,
                       "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": UNK,
                  "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": MAX_WORD_CHARS,
                  "vocab": vocab},
    }
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


def main(argv):
    if len(argv) == 4 and argv[1] == "expect":
        expect(argv[2], argv[3])
    elif len(argv) in (3, 4) and argv[1] == "tokenizer-json":
        tokenizer_json(argv[2], lowercase=argv[3:] != ["--cased"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
