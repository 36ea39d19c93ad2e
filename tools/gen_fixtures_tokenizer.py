#!/usr/bin/env python3
"""Reference token ids and offsets for the C tokenizer parity tests.

Writes into --out (default build/generated/tokenizer):

  texts/<set>.hex          one text per line, the exact UTF-8 bytes (hex) fed to
                           the tokenizers (invalid UTF-8 only in edge.hex)
  tok/smollm2/             tokenizer.json + tokenizer_config.json that transformers
                           exports for SmolLM2 from the GGUF (AutoTokenizer, gguf_file=)
  tok/gemma3/              the same for Gemma 3 270M's GGUF
  tok/llama2/              tokenizer.json that transformers' LlamaTokenizer converts
                           from tokenizer.model (legacy=True, add_bos_token=True:
                           the Llama 2 behaviour, BOS added, no EOS)
  tok/llama2_auto/         tokenizer.json from AutoTokenizer on the directory holding
                           tokenizer.model (transformers' generic conversion)
  ref/<tok>/<set>.ref      per text: ids (space separated) TAB char offsets
                           ("s-e" space separated; "-" when not compared)
  align/<tok>/conll_<split>.ref  per sentence: for each word "first-end": the tokens
                           whose Hugging Face character span overlaps the word
  dec/<tok>/<set>.hex      per text (sets in DECODE_SETS): the reference decoder's text for
                           the reference ids (Hugging Face decode with special tokens kept;
                           sentencepiece decode), hex
  MANIFEST                 counts

Reference makers:
  smollm2     Hugging Face fast tokenizer (transformers AutoTokenizer from the GGUF);
              the C side runs it on the exported tokenizer.json
  smollm2_llamacpp  the same with the pre-tokenizer llama.cpp maps tokenizer.ggml.pre =
              smollm to (Digits individual_digits + ByteLevel); the C side runs the GGUF
  gemma3      Hugging Face fast tokenizer (transformers AutoTokenizer from Gemma 3's GGUF);
              the C side runs the GGUF and the exported tokenizer.json
  llama2      Hugging Face fast tokenizer (LlamaTokenizer, exported tokenizer.json)
  llama2_auto Hugging Face fast tokenizer (AutoTokenizer generic conversion)
  llama2_spm  the sentencepiece library on tokenizer.model, with BOS (1) prepended
              (ids only: sentencepiece reports offsets in another convention)
  tok512      a Python transcription of llama2.c's encode() (run.c) with bos=1,
              eos=0, on a subset of the sets (it is O(n^2) per text)

Invalid UTF-8 (edge set only): the C tokenizer gets the raw bytes; the Python
tokenizers get bytes.decode('utf-8', errors='replace'), which is what the C
side does internally. Offsets are character offsets into that decoded string.

Texts:
  sst2_train, sst2_dev   the sentence column exactly (with its trailing space)
  sst5_{train,dev,test}  PTB tree leaves joined by single spaces
  ag_news_test           title + " " + description, as in the CSV (backslashes kept)
  conll_{train,valid,test} words joined by single spaces, -DOCSTART- skipped
  edge                   >= 200 hand-made edge strings (see edge_strings())
"""
import argparse
import csv
import os
import re
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def shared_dir():
    return os.environ.get("LL_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))


def cache_dir():
    return os.environ.get("LSLLAMA_CACHE", os.path.expanduser("~/.cache/lsllama"))


# ---------------------------------------------------------------- datasets


def read_sst2(path):
    out = []
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for i, line in enumerate(lines):
        if i == 0 or not line:
            continue
        out.append(line.rsplit(b"\t", 1)[0])
    return out


LEAF = re.compile(rb"\(\d+ ([^()\s]+)\)")


def read_sst5(path):
    out = []
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(b" ".join(LEAF.findall(line)))
    return out


def read_ag(path):
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) >= 3:
                out.append((row[1] + " " + row[2]).encode("utf-8"))
    return out


def read_conll(path):
    sents, cur = [], []
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                if cur:
                    sents.append(cur)
                cur = []
                continue
            w = line.split(b" ")[0]
            if w == b"-DOCSTART-":
                continue
            cur.append(w)
    if cur:
        sents.append(cur)
    return sents


def edge_strings():
    E = []
    # empty and whitespace runs
    ws = ["", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", " \t ", "\n\n\n", " \n ", "\t\t\tx", "x\t\t\t",
          "a  b", "a   b", "a    b", "a \t b", "a\n\nb", "a \n b", " leading", "trailing ", "  both  ",
          "\u00a0", "a\u00a0b", "a\u2009b", "a\u3000b", "\u3000\u3000", "a\u0085b", "a\u180eb", "a\u200bb",
          "a\u2028b", "a\u2029b", "a\ufeffb", "\ufeffBOM at start", "a\x0bb", "a\x0cb", "a\x1cb", "a\x1fb",
          "x  \n  y", "end with newline\n", "    indented code", "\t\tdef f(x):\n\t\t\treturn x"]
    E += ws
    # CJK, other scripts
    E += ["你好，世界", "日本語のテキストです。", "한국어 문장입니다", "中文 English 混合", "東京タワー123",
          "ภาษาไทยไม่มีช่องว่าง", "हिन्दी भाषा", "Ελληνικά κείμενα", "Русский текст, да.", "ქართული",
          "Tiếng Việt có dấu", "Ａｂｃ　ＦＵＬＬＷＩＤＴＨ", "ｶﾀｶﾅ", "𠀀𠀁 rare CJK ext B", "〜・「」『』"]
    # emoji, ZWJ
    E += ["😀", "a😀b", "😀😀😀", "👍🏽", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🇺🇸🇫🇷", "❤️", "✨sparkle✨",
          "I ❤ NY", "emoji at end 🎉", "🤖🤖 robots", "☕️ coffee", "👩🏻‍💻", "1️⃣2️⃣"]
    # combining marks, normalization forms
    E += ["e\u0301", "cafe\u0301", "café", "n\u0303", "a\u0308\u0304", "Z\u0351\u0352\u0353algo", "\u0301start",
          "ﬁ ligature", "Å vs A\u030a", "ǅ titlecase", "ß STRASSE", "İstanbul ı", "x\u20d7 vector"]
    # right to left
    E += ["مرحبا بالعالم", "שלום עולם", "English then عربي then English", "\u202eRTL override\u202c",
          "א1ב2ג3", "سلام 123 ۱۲۳", "\u200fRLM mark", "فارسی‌نویسی ZWNJ"]
    # digits
    E += ["0", "12", "123", "1234", "12345", "123456789012345678901234567890", "3.14159", "1,000,000",
          "-42", "+1 (555) 123-4567", "2024-01-31", "v1.2.3", "0x1F", "1e-10", "١٢٣٤", "१२३", "½ ¾ ²",
          "Ⅻ roman", "a1b2c3", "abc123def", "99 bottles", "$100.00", "50%", "#1"]
    # contractions
    for w in ["it's", "IT'S", "It'S", "it'S", "don't", "DON'T", "we'll", "WE'LL", "they're", "THEY'RE",
              "I've", "I'VE", "I'd", "I'D", "I'm", "I'M", "she'd've", "y'all", "'s", "'t", "''", "'", "`",
              "rock 'n' roll", "o'clock", "ma'am", "it’s curly", "’s alone", "'S upper alone"]:
        E.append(w)
    # punctuation / code / markup
    E += ["Hello, world!", "Hello world", "hello\tworld", "...", "?!?!", "--", "—em dash—", "“quotes”",
          "«guillemets»", "<html><body>x</body></html>", "a+b=c", "f(x) = x^2", "https://example.com/a?b=c&d=e",
          "user@example.com", "#hashtag @mention", "C:\\path\\to\\file", "snake_case_name", "camelCaseName",
          "SCREAMING_SNAKE", "__init__", "a->b", "x != y", "{'a': [1, 2]}", "```code```", "~/.bashrc",
          "-LRB- paren -RRB-", "`` quoted ''", "Mr. Smith's", "U.S.A.", "e.g.", "A.I.", "...and then"]
    # special tokens written in text
    E += ["<|im_start|>", "<|im_end|>", "x <|im_start|>y<|im_end|> z", "<|endoftext|>", "<|im_start", "im_start|>",
          "<s>", "</s>", "<s>hi</s> x", "<unk>", "<|im_start|><|im_start|>", " <|im_end|> ", "<<|im_end|>>",
          "<repo_name>x<file_sep>"]
    # very long words
    E += ["a" * 1000, "ab" * 700, "supercalifragilisticexpialidocious" * 10, "x" * 5000,
          "Donaudampfschifffahrtsgesellschaftskapitän", "😀" * 300, "1" * 2000, " " * 500, "\n" * 300,
          "-" * 400, "é" * 500, "日本" * 300]
    # controls and NUL
    E += ["\x00", "a\x00b", "\x00\x00\x00", "\x01\x02\x03", "\x7f", "bell\x07", "esc\x1b[31mred\x1b[0m"]
    # mixed sentences
    E += ["The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn",
          "Once upon a time, there was a little girl named Lily.", "It was the best of times; it was the worst.",
          "He said: \"I'll be back.\"", "New York-based", "state-of-the-art", "re-enter", "pre- and post-war"]
    out = [s.encode("utf-8") for s in E]
    # invalid UTF-8 (raw bytes)
    bad = [b"\xff", b"\xfe\xff", b"a\x80b", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xe2(\xa1",
           b"\xf0\x9f\x98", b"\xf0\x9f\x98 end", b"\xf0\x80\x80\x80", b"\xed\xa0\x80 surrogate",
           b"\xc0\xaf overlong", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",
           b"ok \xc3\xa9 \xe9 latin1", b"\x80\x80\x80", b"abc\xbf", b"\xf5\xf6\xf7", b"text \xff\xfe more",
           b"\xc2\xa0\xc2", b"\xe2\x80\xa8\xe2\x80", b"x\xf0\x9f\x91\x8d\xf0\x9fy", b"\xce\xbb\xce"]
    out += bad
    # combinations to pass 200 and mix cases
    for a in ["Hello", "it's", "123", "你好", "😀", " ", "\t", "é"]:
        for b in ["world", "  ", "456", "\n", "'LL", "ا"]:
            out.append((a + b).encode("utf-8"))
    return out


# ---------------------------------------------------------------- llama2.c encode (run.c), transcribed


def read_llama2c_vocab(path):
    d = open(path, "rb").read()
    pos = 4
    vocab, scores = [], []
    while pos < len(d):
        sc, l = struct.unpack("<fi", d[pos : pos + 8])
        vocab.append(d[pos + 8 : pos + 8 + l])
        scores.append(sc)
        pos += 8 + l
    lookup = {}
    for i, v in enumerate(vocab):
        lookup.setdefault(v, i)
    return vocab, scores, lookup


def llama2c_encode(text, vocab, scores, lookup, bos=True, eos=False):
    tokens = []
    if bos:
        tokens.append(1)
    if text:
        tokens.append(lookup[b" "])
    buf = b""
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if (c & 0xC0) != 0x80:
            buf = b""
        buf += bytes([c])
        if i + 1 < n and (text[i + 1] & 0xC0) == 0x80 and len(buf) < 4:
            i += 1
            continue
        tid = lookup.get(buf)
        if tid is not None:
            tokens.append(tid)
        else:
            tokens.extend(b + 3 for b in buf)
        buf = b""
        i += 1
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for k in range(len(tokens) - 1):
            tid = lookup.get(vocab[tokens[k]] + vocab[tokens[k + 1]])
            if tid is not None and scores[tid] > best_score:
                best_score, best_id, best_idx = scores[tid], tid, k
        if best_idx == -1:
            break
        tokens[best_idx : best_idx + 2] = [best_id]
    if eos:
        tokens.append(2)
    return tokens


# ---------------------------------------------------------------- writers


DECODE_SETS = ("edge", "sst2_dev", "conll_valid")


def write_texts(path, texts):
    with open(path, "w") as f:
        for t in texts:
            f.write(t.hex() + "\n")


def fmt_ref(ids, offs):
    o = " ".join("%d-%d" % (s, e) for s, e in offs) if offs is not None else "-"
    return " ".join(map(str, ids)) + "\t" + o + "\n"


def hf_encode_all(backend, strs):
    encs = backend.encode_batch(strs, add_special_tokens=True)
    return encs


def make_tiny_fixtures():
    """Write the small committed fixtures of tests/fixtures/tokenizer (run by hand: --make-tiny-fixtures)."""
    import io
    import json
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    out = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
    SHARED = shared_dir()
    lines=[l.rsplit(b"\t",1)[0].decode() for l in open(os.path.join(SHARED, "data", "sst2", "dev.tsv"),"rb").read().split(b"\n")[1:] if l]
    # tiny sentencepiece BPE with byte fallback
    m=io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=m, vocab_size=400, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", minloglevel=2)
    open(os.path.join(out, "tiny_spm.model"),"wb").write(m.getvalue())
    # tiny byte-level BPE tokenizer.json
    tk=Tokenizer(models.BPE())
    tk.pre_tokenizer=pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tk.decoder=decoders.ByteLevel()
    tr=trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>","<|im_start|>","<|im_end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(lines, tr)
    tk.save(os.path.join(out, "tiny_bytelevel.json"))
    print(os.path.getsize(os.path.join(out, "tiny_spm.model")), os.path.getsize(os.path.join(out, "tiny_bytelevel.json")))
    sp=spm.SentencePieceProcessor(model_file=os.path.join(out, "tiny_spm.model"))
    samples=["Hello world", " two  spaces ", "", "naïve café 😀", "it's 12345", "<|im_start|>user", "\t\ttabs\n", "日本語"]
    with open(os.path.join(out, "tiny_expected.txt"),"w") as f:
        f.write("# text (JSON string) TAB tiny_spm.model ids ([1] + sentencepiece) TAB tiny_bytelevel.json ids (tokenizers) TAB char offsets\n")
        for s in samples:
            e=tk.encode(s)
            f.write(json.dumps(s)+"\t"+" ".join(map(str,[1]+sp.encode(s)))+"\t"+" ".join(map(str,e.ids))+"\t"+" ".join("%d-%d"%o for o in e.offsets)+"\n")
    # the same vocabulary as GGUF metadata (tokenizer.ggml.model = llama)
    import gguf
    from sentencepiece import sentencepiece_model_pb2 as pb

    mp = pb.ModelProto()
    mp.ParseFromString(open(os.path.join(out, "tiny_spm.model"), "rb").read())
    w = gguf.GGUFWriter(os.path.join(out, "tiny_spm.gguf"), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list([p.piece.encode("utf-8") for p in mp.pieces])
    w.add_token_scores([p.score for p in mp.pieces])
    w.add_token_types([p.type for p in mp.pieces])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "generated", "tokenizer"))
    ap.add_argument("--tok512-limit", type=int, default=2000, help="texts per set for the slow llama2.c reference")
    ap.add_argument("--make-tiny-fixtures", action="store_true", help="rewrite tests/fixtures/tokenizer and exit")
    args = ap.parse_args()
    if args.make_tiny_fixtures:
        make_tiny_fixtures()
        return
    t0 = time.time()
    out = args.out
    for d in ["texts", "tok", "ref", "align"]:
        os.makedirs(os.path.join(out, d), exist_ok=True)

    sh = shared_dir()
    data = os.path.join(sh, "data")
    sets = {}
    sets["sst2_train"] = read_sst2(os.path.join(data, "sst2", "train.tsv"))
    sets["sst2_dev"] = read_sst2(os.path.join(data, "sst2", "dev.tsv"))
    for sp in ["train", "dev", "test"]:
        sets["sst5_" + sp] = read_sst5(os.path.join(data, "sst5", sp + ".txt"))
    sets["ag_news_test"] = read_ag(os.path.join(data, "ag_news", "test.csv"))
    conll = {}
    for sp in ["train", "valid", "test"]:
        conll[sp] = read_conll(os.path.join(data, "conll2003", sp + ".txt"))
        sets["conll_" + sp] = [b" ".join(ws) for ws in conll[sp]]
    sets["edge"] = edge_strings()
    for name, texts in sets.items():
        write_texts(os.path.join(out, "texts", name + ".hex"), texts)
    strs = {k: [t.decode("utf-8", errors="replace") for t in v] for k, v in sets.items()}

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    import transformers
    from transformers import AutoTokenizer, LlamaTokenizer

    transformers.logging.set_verbosity_error()
    manifest = []

    def run_hf(tokname, tk):
        backend = tk.backend_tokenizer
        os.makedirs(os.path.join(out, "ref", tokname), exist_ok=True)
        os.makedirs(os.path.join(out, "align", tokname), exist_ok=True)
        # the transformers call path must agree with the backend path
        for s in strs["edge"][:50] + strs["sst2_dev"][:50]:
            a = tk(s)["input_ids"]
            b = backend.encode(s, add_special_tokens=True).ids
            assert a == b, (tokname, s, a, b)
        for name, ss in strs.items():
            encs = hf_encode_all(backend, ss)
            ntok = 0
            with open(os.path.join(out, "ref", tokname, name + ".ref"), "w") as f:
                for e in encs:
                    f.write(fmt_ref(e.ids, e.offsets))
                    ntok += len(e.ids)
            manifest.append("%s %s texts %d tokens %d" % (tokname, name, len(ss), ntok))
            if name in DECODE_SETS:
                os.makedirs(os.path.join(out, "dec", tokname), exist_ok=True)
                with open(os.path.join(out, "dec", tokname, name + ".hex"), "w") as f:
                    for e in encs:
                        f.write(backend.decode(e.ids, skip_special_tokens=False).encode("utf-8").hex() + "\n")
            if name.startswith("conll_"):
                words = conll[name[6:]]
                with open(os.path.join(out, "align", tokname, name + ".ref"), "w") as f:
                    for e, ws in zip(encs, words):
                        # tokens whose Hugging Face character span overlaps the word
                        # (char_to_token alone returns only the first token of a
                        # character, e.g. "▁" but not "1" for the word "1")
                        pos, parts = 0, []
                        for w in ws:
                            wl = len(w.decode("utf-8", errors="replace"))
                            ks = [k for k, (s0, e0) in enumerate(e.offsets) if e0 > s0 and s0 < pos + wl and e0 > pos]
                            if ks:
                                assert e.char_to_token(pos) in ks
                                parts.append("%d-%d" % (ks[0], ks[-1] + 1))
                            else:
                                parts.append("x")
                            pos += wl + 1
                        f.write(" ".join(parts) + "\n")

    gguf_dir = os.path.join(cache_dir(), "models")

    def from_gguf(name, export):
        """transformers' tokenizer converted from a GGUF of the model cache, its tokenizer.json exported to
        tok/<export>."""
        if not os.path.exists(os.path.join(gguf_dir, name)):
            sys.exit("gen_fixtures_tokenizer: %s missing (run scripts/setup.sh --tests)" % os.path.join(gguf_dir, name))
        tk = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=name)
        tk.save_pretrained(os.path.join(out, "tok", export))
        return tk

    # SmolLM2 from the GGUF
    smol = from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2")
    run_hf("smollm2", smol)
    # the GGUF itself (tokenizer.ggml.pre = smollm) as llama.cpp maps it: digits
    # one by one, then the GPT-2 regex, i.e. SmolLM2's own tokenizer.json
    # pre-tokenizer; transformers' GGUF conversion drops the digit split
    from tokenizers import pre_tokenizers

    smol.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    run_hf("smollm2_llamacpp", smol)

    # Gemma 3 (issue 13): transformers' conversion of the GGUF's tokenizer (262,144 pieces, byte fallback, no
    # dummy prefix); the C side runs the exported tokenizer.json
    run_hf("gemma3", from_gguf("gemma-3-270m-q4_k_m.gguf", "gemma3"))

    # Llama 2: transformers' conversion of tokenizer.model
    l2dir = os.path.join(sh, "models", "llama2-tokenizer")
    try:
        import google.protobuf  # noqa: F401  (transformers' SentencePiece extractor needs it)
    except ImportError:
        sys.exit("gen_fixtures_tokenizer: the 'protobuf' package is required to convert tokenizer.model")
    llama = LlamaTokenizer.from_pretrained(l2dir, legacy=True, add_bos_token=True)
    llama.save_pretrained(os.path.join(out, "tok", "llama2"))
    run_hf("llama2", llama)
    auto = AutoTokenizer.from_pretrained(l2dir)
    auto.save_pretrained(os.path.join(out, "tok", "llama2_auto"))
    run_hf("llama2_auto", auto)

    # sentencepiece itself on tokenizer.model
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(l2dir, "tokenizer.model"))
    os.makedirs(os.path.join(out, "ref", "llama2_spm"), exist_ok=True)
    for name, ss in strs.items():
        ids = sp.encode(ss)
        with open(os.path.join(out, "ref", "llama2_spm", name + ".ref"), "w") as f:
            for x in ids:
                f.write(fmt_ref([1] + x, None))
        manifest.append("llama2_spm %s texts %d tokens %d" % (name, len(ss), sum(len(x) + 1 for x in ids)))
        if name in DECODE_SETS:
            os.makedirs(os.path.join(out, "dec", "llama2_spm"), exist_ok=True)
            with open(os.path.join(out, "dec", "llama2_spm", name + ".hex"), "w") as f:
                for x in ids:
                    f.write(sp.decode([1] + x).encode("utf-8").hex() + "\n")

    # llama2.c algorithm on tok512.bin (subset: first N texts of each set)
    vocab, scores, lookup = read_llama2c_vocab(os.path.join(sh, "models", "stories260K", "tok512.bin"))
    os.makedirs(os.path.join(out, "ref", "tok512"), exist_ok=True)
    for name, ss in strs.items():
        sub = ss[: args.tok512_limit]
        ntok = 0
        with open(os.path.join(out, "ref", "tok512", name + ".ref"), "w") as f:
            for s in sub:
                ids = llama2c_encode(s.encode("utf-8"), vocab, scores, lookup)
                ntok += len(ids)
                f.write(fmt_ref(ids, None))
        manifest.append("tok512 %s texts %d tokens %d" % (name, len(sub), ntok))

    with open(os.path.join(out, "MANIFEST"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    print("gen_fixtures_tokenizer: wrote %s in %.1f s" % (out, time.time() - t0))


if __name__ == "__main__":
    main()
