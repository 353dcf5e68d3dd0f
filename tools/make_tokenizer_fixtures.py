#!/usr/bin/python3
"""Train the small tokenizers the parity tests use (tests/data/tokenizer_bpe, tokenizer_spm).

Development time only; deterministic. From the repo root, with Debian's python3
(python3-sentencepiece for the SentencePiece model):

    /usr/bin/python3 tools/make_tokenizer_fixtures.py
    (cd tools/hf_tokenizers && npm ci && node make_fixtures.js)   # the tokenizer.json files

Byte-level BPE: a plain GPT-2-style trainer (bytes mapped to GPT-2's alphabet, the most
frequent pair merged 700 times, ties broken by the pair) over a fixed corpus (an English
paragraph plus multilingual sample sentences, kept in this file so the output never
changes with the docs), written as vocab.json (<s>=0 <pad>=1 </s>=2 <unk>=3,
the 256 byte symbols, the merges, <mask> last: RoBERTa's layout) and merges.txt. The
pre-tokenization here only approximates GPT-2's regex (Python's re has no \\p{L}); the
merges are data, and the parity test checks how they are applied, not how they were found.

SentencePiece: spm.SentencePieceTrainer (unigram, nmt_nfkc, about 380 pieces), as XLM-R's
sentencepiece.bpe.model is (a unigram model despite the name).
"""

import collections
import json
import os
import re

SAMPLES = [
    "The quick brown fox jumps over the lazy dog. It's 2024; we'll see what they've done!",
    "Le café était très bon, n'est-ce pas ? Où est la bibliothèque ?",
    "Der Straßenbahnfahrer überprüfte die Fahrkarten. Größe, Maß und Fuß.",
    "El niño comió paella en España; ¿dónde está el baño? ¡Olé!",
    "Москва — столица России. Привет, как дела?",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. ΟΔΟΣ ΣΟΦΟΚΛΕΟΥΣ.",
    "東京は日本の首都です。中文分词很有趣。한국어 문장도 있습니다.",
    "नमस्ते दुनिया। مرحبا بالعالم. שלום עולם.",
    "Emoji 😀🎉👍🏽 and symbols ©®™ €£¥ ½ ¾ ∑∫√ → ← ↑",
    "Numbers 3.14159, 1,000,000 and 42nd street; version v1.2.3-beta+build.7",
    "def f(x):\n    return x ** 2  # comment\n\tindented\r\nwindows line",
]

BYTE_ALPHABET = None


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


PAT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


ENGLISH = """
A C++ inference server for encoders on CPU, over gRPC, that lets a remote client look
inside multi-head attention: per-head attention maps, per-head statistics, and what happens
when heads are switched off. It loads a checkpoint directory, runs the encoder with matmuls,
and batches concurrent requests dynamically on one inference thread. Every refusal names
the field, the value and the limit, and every accepted request gets an answer. The tokens
come from the tokenizer that the model ships; the offsets are bytes into the text, and long
inputs are truncated longest first when the client asks for it. Tests compare the hidden
states and the attention probabilities with a reference written in plain PyTorch, in double
precision, for each family of models: BERT, RoBERTa, XLM-RoBERTa, DistilBERT and ELECTRA.
"""


def corpus():
    return "\n".join([ENGLISH * 30] + SAMPLES * 20)


def train_bpe(text, merges_wanted):
    b2u = bytes_to_unicode()
    words = collections.Counter(PAT.findall(text))
    vocab_words = {tuple(b2u[b] for b in w.encode("utf-8")): c for w, c in words.items()}
    merges = []
    for _ in range(merges_wanted):
        pairs = collections.Counter()
        for w, c in vocab_words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        merged = {}
        for w, c in vocab_words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        vocab_words = merged
    tokens = ["<s>", "<pad>", "</s>", "<unk>"]
    seen = set(tokens)
    for b in range(256):
        tokens.append(b2u[b])
        seen.add(b2u[b])
    for a, b in merges:
        if a + b not in seen:
            tokens.append(a + b)
            seen.add(a + b)
    tokens.append("<mask>")
    return {t: i for i, t in enumerate(tokens)}, merges


def proto_fields(buf):
    """(field number, wire type, value) of a protobuf message, for the few fields read."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wire)
        yield field, wire, value


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def write_unigram_json(model_path, json_path):
    """tokenizer.json for the SentencePiece model as transformers' XLMRobertaConverter writes
    it (convert_slow_tokenizer.py): the fairseq specials then the pieces (ids + 1), Unigram
    with unk_id 3, normalizer Precompiled(charsmap) + Replace(" {2,}" -> " "), Metaspace
    pre-tokenizer, <s> A </s></s> B </s>. The parity test runs Hugging Face's tokenizers on
    it as the reference for attnserve's libsentencepiece path."""
    import base64
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model_path)
    with open(model_path, "rb") as f:
        proto = f.read()
    charsmap = b""
    for field, _, value in proto_fields(proto):
        if field == 3:  # normalizer_spec
            for f2, _, v2 in proto_fields(value):
                if f2 == 2:  # precompiled_charsmap
                    charsmap = v2
    vocab = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]]
    vocab += [[sp.id_to_piece(i), sp.get_score(i)] for i in range(3, sp.get_piece_size())]
    vocab += [["<mask>", 0.0]]
    specials = [(0, "<s>"), (1, "<pad>"), (2, "</s>"), (3, "<unk>"), (len(vocab) - 1, "<mask>")]
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": t == "<mask>",
                          "rstrip": False, "normalized": False, "special": True}
                         for i, t in specials],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled",
             "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                          "prepend_scheme": "always", "split": True},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                           "trim_offsets": True, "add_prefix_space": True},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                    "split": True},
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": False},
    }
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    text = corpus()
    out = os.path.join("tests", "data", "tokenizer_bpe")
    os.makedirs(out, exist_ok=True)
    vocab, merges = train_bpe(text, 700)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))
    print("%s: %d tokens, %d merges" % (out, len(vocab), len(merges)))

    import sentencepiece as spm
    out = os.path.join("tests", "data", "tokenizer_spm")
    os.makedirs(out, exist_ok=True)
    corpus_path = os.path.join(out, "corpus.tmp")
    with open(corpus_path, "w", encoding="utf-8") as f:
        f.write(text)
    spm.SentencePieceTrainer.train(
        input=corpus_path, model_prefix=os.path.join(out, "sentencepiece.bpe"),
        vocab_size=380, hard_vocab_limit=False, model_type="unigram", normalization_rule_name="nmt_nfkc",
        character_coverage=0.9995, seed_sentencepiece_size=100000, num_threads=1,
        shuffle_input_sentence=False, minloglevel=2)
    os.remove(corpus_path)
    os.remove(os.path.join(out, "sentencepiece.bpe.vocab"))
    write_unigram_json(os.path.join(out, "sentencepiece.bpe.model"),
                       os.path.join(out, "tokenizer.json"))
    print("%s: sentencepiece.bpe.model, tokenizer.json" % out)


if __name__ == "__main__":
    main()
