#!/usr/bin/env python3
"""Reference encodings for every tokenizer.json setting lsllama implements, and
files for every setting it refuses (tests/test_tokenizer_settings.c).

Each case is a small vocabulary built with the `tokenizers` library (trained on
SST-2 dev, or the minimal vocabulary of issue 11) whose JSON is then given one
setting of the model, normalizer, pre-tokenizer, post-processor or added
tokens. The reference is `tokenizers` itself (Tokenizer.from_str(...).encode
with add_special_tokens=True) on a corpus of edge strings.

Writes into --out (default build/generated/tokenizer_settings):

  texts.hex            one text per line, UTF-8 bytes as hex (valid UTF-8 only)
  CASES                one case name per line
  <case>.json          the tokenizer.json
  <case>.ref           per text: ids TAB char offsets "s-e ..."
  REFUSED              per line: name TAB substring TAB substring (the error
                       message must name the key and the value)
  refuse/<name>.json   a tokenizer.json with that one setting
"""
import argparse
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from gen_fixtures_tokenizer import edge_strings, read_sst2, shared_dir  # noqa: E402

EXTRA = ["the movie", "the movie movie", "themovie", " the movie ", "the  movie", "movie the", "Ġmovie",
         "<x>", "a<x>b", "a <x> b", "<x><x>", "foo", "a foo b", "afoo", "foo  \t bar", "  foo  ", "xfoox",
         "bar", "a bar", " bar ", "abar", "<|endoftext|>", "x<|endoftext|>y", " <|endoftext|> ", "<s>", "</s>",
         "[SEP] [CLS]", "don't stop", "it's 2024-01-31, 12:30", "e.g. 3.14 & a+b", "日本 語", "ｘ<x>ｘ", "é<x>é",
         "_<x>_", "1<x>2", "tab\t<x>\tend", "\u3000foo\u3000"]


def corpus():
    strs = [s.decode("utf-8") for s in edge_strings()
            if s.decode("utf-8", errors="replace") == s.decode("utf-8", errors="ignore")]
    sst = read_sst2(os.path.join(shared_dir(), "data", "sst2", "dev.tsv"))
    return strs + EXTRA + [s.decode("utf-8") for s in sst[:200]]


def train_bytelevel(lines):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>", "<s>", "</s>", "[CLS]", "[SEP]"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(lines, tr)
    return json.loads(tk.to_str())


def train_char(lines):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tr = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tk.train_from_iterator(lines, tr)
    j = json.loads(tk.to_str())
    v = j["model"]["vocab"]
    n = max(v.values()) + 1
    for b in range(256):
        v["<0x%02X>" % b] = n + b
    return j


def issue_minimal(ignore_merges):
    """issue 11's vocabulary: 'the movie' -> the, Ġmovie only with ignore_merges"""
    toks = ["Ġ", "m", "o", "v", "i", "e", "Ġm", "Ġmo", "Ġmov", "Ġmovi", "Ġmovie", "t", "h", "th", "the", "movie"]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                                "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": ignore_merges, "vocab": {t: i for i, t in enumerate(toks)},
                      "merges": [["Ġ", "m"], ["Ġm", "o"], ["Ġmo", "v"], ["Ġmov", "i"], ["t", "h"], ["th", "e"]]}}


def bl_pre(**kw):
    d = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    d.update(kw)
    return d


def seq(*p):
    return {"type": "Sequence", "pretokenizers": list(p)}


def added(content, i, special=False, **kw):
    d = {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": not special, "special": special}
    d.update(kw)
    return d


def variant(base, **kw):
    """A copy of the tokenizer.json base with top-level keys replaced (model_X: the model's key X)."""
    j = copy.deepcopy(base)
    for k, v in kw.items():
        if k.startswith("model_"):
            j["model"][k[6:]] = v
        else:
            j[k] = v
    return j


def cases(BL, CH):
    C = {}

    def bl(**kw):
        return variant(BL, **kw)

    def ch(**kw):
        return variant(CH, **kw)

    C["issue_ignore_merges"] = issue_minimal(True)
    C["issue_no_ignore_merges"] = issue_minimal(False)
    C["bl_plain"] = bl()
    C["bl_ignore_merges"] = bl(model_ignore_merges=True)
    C["bl_prefix_space"] = bl(pre_tokenizer=bl_pre(add_prefix_space=True))
    C["bl_no_regex"] = bl(pre_tokenizer=bl_pre(use_regex=False))
    C["bl_digits"] = bl(pre_tokenizer=seq({"type": "Digits", "individual_digits": False}, bl_pre()))
    C["bl_digits_individual"] = bl(pre_tokenizer=seq({"type": "Digits", "individual_digits": True}, bl_pre()))
    for beh in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
        for inv in [False, True]:
            C["bl_split_%s%s" % (beh, "_invert" if inv else "")] = bl(pre_tokenizer=seq(
                {"type": "Split", "pattern": {"Regex": "\\s+|[,.!?]"}, "behavior": beh, "invert": inv},
                bl_pre(use_regex=False)))
        C["bl_split_string_%s" % beh] = bl(pre_tokenizer=seq(
            {"type": "Split", "pattern": {"String": " "}, "behavior": beh, "invert": False}, bl_pre(use_regex=False)))
        C["bl_punct_%s" % beh] = bl(pre_tokenizer=seq({"type": "Punctuation", "behavior": beh}, bl_pre()))
    C["bl_whitespace"] = bl(pre_tokenizer=seq({"type": "Whitespace"}, bl_pre(use_regex=False)))
    C["bl_whitespacesplit"] = bl(pre_tokenizer=seq({"type": "WhitespaceSplit"}, bl_pre(use_regex=False)))
    # post-processors
    for tr in [False, True]:
        for aps in [False, True]:
            C["bl_post_bytelevel_trim%d_aps%d" % (tr, aps)] = bl(
                pre_tokenizer=bl_pre(add_prefix_space=aps),
                post_processor={"type": "ByteLevel", "add_prefix_space": aps, "trim_offsets": tr, "use_regex": True})
    sp = {k: v for k, v in BL["model"]["vocab"].items() if k in ("<s>", "</s>", "[CLS]", "[SEP]")}
    C["bl_post_template"] = bl(post_processor={"type": "TemplateProcessing",
                                               "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                          {"Sequence": {"id": "A", "type_id": 0}},
                                                          {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                                               "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                                        {"Sequence": {"id": "B", "type_id": 1}}],
                                               "special_tokens": {"<s>": {"id": "<s>", "ids": [sp["<s>"]],
                                                                          "tokens": ["<s>"]},
                                                                  "</s>": {"id": "</s>", "ids": [sp["</s>"]],
                                                                           "tokens": ["</s>"]}}})
    C["bl_post_bert"] = bl(post_processor={"type": "BertProcessing", "sep": ["[SEP]", sp["[SEP]"]],
                                           "cls": ["[CLS]", sp["[CLS]"]]})
    for tr in [False, True]:
        C["bl_post_roberta_trim%d" % tr] = bl(pre_tokenizer=bl_pre(add_prefix_space=True), post_processor={
            "type": "RobertaProcessing", "sep": ["</s>", sp["</s>"]], "cls": ["<s>", sp["<s>"]], "trim_offsets": tr,
            "add_prefix_space": True})
    C["bl_post_sequence"] = bl(post_processor={"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        C["bl_post_template"]["post_processor"]]})
    # normalizers
    C["bl_norm_replace_string"] = bl(normalizer={"type": "Replace", "pattern": {"String": "movie"}, "content": "film"})
    C["bl_norm_replace_regex"] = bl(normalizer={"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"})
    C["bl_norm_prepend"] = bl(normalizer={"type": "Prepend", "prepend": "> "})
    for l, r in [(True, True), (True, False), (False, True)]:
        C["bl_norm_strip_%d%d" % (l, r)] = bl(normalizer={"type": "Strip", "strip_left": l, "strip_right": r})
    C["bl_norm_sequence"] = bl(normalizer={"type": "Sequence", "normalizers": [
        {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Replace", "pattern": {"String": " "}, "content": "_"}]})
    # unknown bytes: the alphabet without some bytes (dropped, or unk_token, fused or not)
    part = bl()
    v = part["model"]["vocab"]
    gone = {k for k in v if k in ("Ã", "¨", "Ċ", "ĉ", "ð", "Ł")}
    keep = [k for k, _ in sorted(v.items(), key=lambda kv: kv[1]) if k not in gone]
    merges = [m for m in part["model"]["merges"]
              if not any(g in (m if isinstance(m, list) else m.split(" "))[0] + (m if isinstance(m, list) else
                                                                                m.split(" "))[1] for g in gone)]
    part["model"]["vocab"] = {k: i for i, k in enumerate(keep)}
    part["model"]["merges"] = merges
    part["added_tokens"] = [dict(a, id=part["model"]["vocab"][a["content"]]) for a in part["added_tokens"]]
    C["bl_missing_bytes"] = part
    u = copy.deepcopy(part)
    u["model"]["unk_token"] = "<|endoftext|>"
    C["bl_missing_bytes_unk"] = u
    u = copy.deepcopy(u)
    u["model"]["fuse_unk"] = True
    C["bl_missing_bytes_unk_fuse"] = u
    # added tokens: flags
    n = max(BL["model"]["vocab"].values()) + 1
    base_added = copy.deepcopy(BL["added_tokens"])
    C["bl_added_flags"] = bl(added_tokens=base_added + [
        added("<x>", n, special=True, single_word=True),
        added("foo", n + 1, lstrip=True, rstrip=True, normalized=False),
        added(" bar", n + 2),
        added("ba", n + 3, special=True, normalized=False),
        added("<x", n + 4, lstrip=True)])
    C["bl_added_normalized"] = bl(added_tokens=base_added + [added("foo", n, normalized=True),
                                                             added("oo b", n + 1, normalized=False),
                                                             added("<x>", n + 2, normalized=True, rstrip=True)])
    # character BPE with Metaspace
    for scheme in ["always", "first", "never"]:
        for split in [True, False]:
            C["ch_metaspace_%s_split%d" % (scheme, split)] = ch(pre_tokenizer={
                "type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split},
                decoder={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split})
    C["ch_metaspace_first_added"] = ch(pre_tokenizer={"type": "Metaspace", "replacement": "\u2581",
                                                      "prepend_scheme": "first", "split": True},
                                       added_tokens=CH["added_tokens"] + [
                                           added("<x>", max(CH["model"]["vocab"].values()) + 1, special=True)])
    C["ch_byte_fallback"] = ch()
    C["ch_no_byte_fallback_unk"] = ch(model_byte_fallback=False)
    C["ch_no_byte_fallback_unk_nofuse"] = ch(model_byte_fallback=False, model_fuse_unk=False)
    C["ch_ignore_merges"] = ch(model_ignore_merges=True)
    C["ch_dropout_zero"] = ch(model_dropout=0.0)
    return C


def refusals(BL, CH):
    R = []

    def bl(name, subs, **kw):
        R.append((name, variant(BL, **kw), subs))

    bl("model_dropout", ["dropout", "0.1"], model_dropout=0.1)
    bl("model_continuing_subword_prefix", ["continuing_subword_prefix", "##"], model_continuing_subword_prefix="##")
    bl("model_end_of_word_suffix", ["end_of_word_suffix", "</w>"], model_end_of_word_suffix="</w>")
    j = issue_minimal(False)  # most of the byte-level alphabet is missing
    j["model"]["byte_fallback"] = True
    R.append(("model_byte_fallback_bytelevel", j, ["byte_fallback", "true"]))
    bl("normalizer_nfkc", ["type", "NFKC"], normalizer={"type": "NFKC"})
    bl("normalizer_lowercase", ["type", "Lowercase"], normalizer={"type": "Lowercase"})
    bl("normalizer_bert", ["type", "BertNormalizer"], normalizer={
        "type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None,
        "lowercase": True})
    bl("pretok_bert", ["type", "BertPreTokenizer"], pre_tokenizer={"type": "BertPreTokenizer"})
    bl("pretok_chardelimiter", ["type", "CharDelimiterSplit"], pre_tokenizer={"type": "CharDelimiterSplit",
                                                                              "delimiter": "x"})
    bl("pretok_unicodescripts", ["type", "UnicodeScripts"], pre_tokenizer={"type": "UnicodeScripts"})
    bl("decoder_wordpiece", ["type", "WordPiece"], decoder={"type": "WordPiece", "prefix": "##", "cleanup": True})
    bl("decoder_bpe", ["type", "BPEDecoder"], decoder={"type": "BPEDecoder", "suffix": "</w>"})
    bl("added_normalized_with_normalizer", ["normalized", "foo"],
       normalizer={"type": "Strip", "strip_left": True, "strip_right": True},
       added_tokens=BL["added_tokens"] + [added("foo", max(BL["model"]["vocab"].values()) + 1)])
    # regexes Oniguruma (tokenizers) and PCRE2 read differently (a first user's trial found each)
    def split(rx):
        return seq({"type": "Split", "pattern": {"Regex": rx}, "behavior": "Isolated", "invert": False},
                   bl_pre(use_regex=False))
    bl("regex_hex_class", ["\\h", "Oniguruma"], pre_tokenizer=split("\\h+"))
    bl("regex_word_boundary", ["\\b", "Oniguruma"], pre_tokenizer=split("\\b"))
    bl("regex_empty_match", ["x*", "empty string"], pre_tokenizer=split("x*"))
    bl("regex_lookahead_replace", ["(?=[A-Z])", "empty string"],
       normalizer={"type": "Replace", "pattern": {"Regex": "(?=[A-Z])"}, "content": " "})
    bl("regex_caseless_fold", ["(?i)SS", "fold"],
       normalizer={"type": "Replace", "pattern": {"Regex": "(?i)SS"}, "content": "#"})
    # an added token that disagrees with the vocabulary (tokenizers uses ids of its own then)
    vocab = BL["model"]["vocab"]
    some = sorted(vocab, key=vocab.get)[300]
    bl("added_id_of_other_text", ["<tok>", "another text"],
       added_tokens=BL["added_tokens"] + [added("<tok>", vocab[some])])
    bl("added_text_with_other_id", [some, "another id"],
       added_tokens=BL["added_tokens"] + [added(some, max(vocab.values()) + 1)])
    # model types other than BPE, as the library writes them
    from tokenizers import Tokenizer, models
    for mname, m in [("WordPiece", models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]")),
                     ("Unigram", models.Unigram([("<unk>", 0.0), ("a", -1.0)], 0, False)),
                     ("WordLevel", models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))]:
        R.append(("model_" + mname.lower(), json.loads(Tokenizer(m).to_str()), ["type", mname]))
    return R


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "generated", "tokenizer_settings"))
    args = ap.parse_args()
    from tokenizers import Tokenizer
    out = args.out
    os.makedirs(os.path.join(out, "refuse"), exist_ok=True)
    lines = [s.decode("utf-8") for s in read_sst2(os.path.join(shared_dir(), "data", "sst2", "dev.tsv"))]
    BL, CH = train_bytelevel(lines), train_char(lines)
    texts = corpus()
    with open(os.path.join(out, "texts.hex"), "w") as f:
        for t in texts:
            f.write(t.encode("utf-8").hex() + "\n")
    C = cases(BL, CH)
    for name, j in C.items():
        s = json.dumps(j, ensure_ascii=False)
        tk = Tokenizer.from_str(s)  # the reference accepts it
        with open(os.path.join(out, name + ".json"), "w") as f:
            f.write(s)
        with open(os.path.join(out, name + ".ref"), "w") as f:
            for e in tk.encode_batch(texts, add_special_tokens=True):
                f.write(" ".join(map(str, e.ids)) + "\t" + " ".join("%d-%d" % o for o in e.offsets) + "\n")
    with open(os.path.join(out, "CASES"), "w") as f:
        f.write("\n".join(C) + "\n")
    # the issue's headline, checked here too
    e = Tokenizer.from_str(json.dumps(C["issue_ignore_merges"])).encode("the movie")
    assert e.tokens == ["the", "Ġmovie"], e.tokens
    R = refusals(BL, CH)
    with open(os.path.join(out, "REFUSED"), "w") as f:
        for name, j, subs in R:
            with open(os.path.join(out, "refuse", name + ".json"), "w") as g:
                g.write(json.dumps(j, ensure_ascii=False))
            f.write("\t".join([name] + subs) + "\n")
    print("gen_fixtures_tokenizer_settings: %d cases x %d texts, %d refusals in %s" % (len(C), len(texts), len(R), out))


if __name__ == "__main__":
    main()
