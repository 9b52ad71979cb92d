#!/usr/bin/env python3
"""Golden fixtures for bna's Hugging Face loaders (tests/fixtures/hf/), made with transformers and
tokenizers on the GPU machine (no downloads: every model is random-initialised from a config and every
tokenizer is trained here on the embedded text below).

  python3 tools/hf_fixtures.py --out DIR            # models, tokenizers, logits, token ids
  python3 tools/hf_fixtures.py --unicode-table F    # only the Unicode table (src/tokenizer/unicode_table.inc)

Per model family (gpt2, qwen2, qwen3, llama3, glm4) DIR/<family>/ holds config.json, the weights
(model.safetensors, or shards + model.safetensors.index.json for llama3), tokenizer.json and
reference.safetensors: input_ids [T] (I64), logits_f64 [T, V] (the model run in float64: the oracle),
logits_f32 [T, V] (the same run in float32: the low-precision reference of docs/numerics.md) and
hidden_f64_<l> [T, hidden] (hidden states after embedding l = 0 and each layer; for debugging).
qwen2, qwen3 and glm4 store bf16 weights; their references use the bf16-rounded values.
DIR/tokenizer_cases.json holds the hard strings, and per tokenizer the ids `tokenizers` gives
(add_special_tokens=False) and its decode of them.
All parameters are drawn at scale (N(0, 0.15) matrices, norm weights 1 + N(0, 0.1), biases
N(0, 0.1)) so that wrong norms, biases or RoPE variants change the logits visibly.
"""
import argparse
import json
import os
import sys
import traceback
import unicodedata

TRAIN_TEXT = """
The quick brown fox jumps over the lazy dog. It's a sunny day, and we're going to the park; they'll
bring sandwiches, and I'd like some tea. Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 123 2024 31415 1000000.
def main(argv):
    for i in range(10):
        print(f"value {i} = {i * i}")  # squares
    return 0
Attention is all you need. Sparse attention over graphs: windows, landmarks, cycles and butterflies.
In the beginning the Universe was created. This has made a lot of people very angry and been widely
regarded as a bad move. Café, naïve, résumé, Ångström, Zürich, São Paulo, Kraków, Dvořák.
Русский текст для проверки. Ελληνικά γράμματα. 日本語のテキストと中文文本。한국어 문장입니다.
Emoji: 😀 😂 👍 🎉 ❤️ 🚀. Math: ∑ ∫ √ ∞ ≤ ≥ ≠ ± × ÷ π.
    Indented line with    multiple   spaces and\ttabs.
Windows line\r\nendings and trailing spaces   
The end. THE END. the end! 'quoted' "double" (parens) [brackets] {braces} <angles>.
""" * 3

HARD_STRINGS = [
    "Hello, world!",
    "",
    " ",
    "   leading spaces",
    "trailing spaces   ",
    "multiple\n\n\nnewlines\r\n\r\nwindows\n",
    "tabs\tand\t\tmixed \t \n whitespace \u00a0nbsp\u3000ideographic",
    "digits 1234567890 and 3.14159 and 1,000,000 and ١٢٣ and ½ Ⅻ",
    "I'm you're we've they'll she'd it's DON'T I'M We'Ve",
    "emoji 😀👍🏽 👨‍👩‍👧 🇯🇵 ❤️",
    "Unicode: naïve café résumé Ångström Zürich",
    "decomposed: e\u0301 and A\u030a",
    "日本語のテキストと中文文本。한국어 문장입니다.",
    "Русский текст. Ελληνικά.",
    "code: def f(x):\n    return x**2  # comment\n",
    "<|endoftext|>special<|endoftext|> tokens <|endoftext|>",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|>Llama<|end_of_text|>",
    "[gMASK]<sop><|user|>\nGLM<|assistant|>",
    "mask test <mask> and  <mask>end",
    "<think>reasoning</think> answer",
    "a" * 40 + " " + "ab" * 15,
    "!!!???...,,,;;;:::---___===+++",
    "mixed123abc456def 12 345 6789 0000",
    "\u2126 \u212b \u2000x",
    "zero\u200bwidth\u200djoiner and \ufeffbom",
    "  \n  \n\t\n",
]

GPT2_RE = None  # GPT-2's pattern is built into ByteLevel(use_regex=True)
CL100K_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
            r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- Unicode table
def unicode_ranges(pred):
    out, start = [], None
    for cp in range(0x110000):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def nfc_unsafe_set():
    """Code points that may change under NFC or combine with a neighbour; text without them is NFC."""
    s = set()
    for cp in range(0x110000):
        c = chr(cp)
        if unicodedata.category(c) == "Cs":
            continue
        if unicodedata.combining(c) != 0 or unicodedata.normalize("NFC", c) != c:
            s.add(cp)
        d = unicodedata.decomposition(c)
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == c:
                s.add(parts[1])
    s.update(range(0x1161, 0x1176))  # Hangul V jamo
    s.update(range(0x11A8, 0x11C3))  # Hangul T jamo
    return s


def canonical_decomposition(cp):
    """The raw (one-level) canonical decomposition mapping of cp: () if none or compatibility-only.
    Hangul syllables are algorithmic (unicodedata gives '' for them) and stay out of the table."""
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return ()
    return tuple(int(x, 16) for x in d.split())


def nfc_tables():
    """The data of UAX #15's NFC: canonical decompositions (cp, first, second or 0), combining class
    ranges (lo, hi, ccc != 0) and the full composition exclusions. An exclusion is derived, not read
    from CompositionExclusions.txt: a code point with a canonical decomposition that NFC does not
    give back (singletons, non-starter decompositions, script-specific and post-composition ones)."""
    decomp, excluded, ccc = [], set(), {}
    for cp in range(0x110000):
        c = chr(cp)
        if unicodedata.category(c) == "Cs":
            continue
        k = unicodedata.combining(c)
        if k:
            ccc[cp] = k
        d = canonical_decomposition(cp)
        if not d:
            continue
        assert len(d) in (1, 2), (hex(cp), d)
        decomp.append((cp, d[0], d[1] if len(d) == 2 else 0))
        if unicodedata.normalize("NFC", c) != c:
            excluded.add(cp)
        elif len(d) == 2:
            # A primary composite: NFC of its pair must give it back.
            assert unicodedata.normalize("NFC", chr(d[0]) + chr(d[1])) == c, hex(cp)
    ccc_ranges = []
    for cp in sorted(ccc):
        if ccc_ranges and ccc_ranges[-1][1] == cp - 1 and ccc_ranges[-1][2] == ccc[cp]:
            ccc_ranges[-1][1] = cp
        else:
            ccc_ranges.append([cp, cp, ccc[cp]])
    return decomp, [tuple(r) for r in ccc_ranges], excluded


def table_lines(name, ctype, rows, fmt, per_row):
    lines = ["static constexpr %s %s[] = {" % (ctype, name)]
    for i in range(0, len(rows), per_row):
        lines.append("    " + " ".join(fmt % r for r in rows[i:i + per_row]))
    lines.append("};")
    return lines


def write_unicode_table(path):
    cat = unicodedata.category
    tables = {
        "kLetter": unicode_ranges(lambda cp: cat(chr(cp)).startswith("L")),
        "kNumber": unicode_ranges(lambda cp: cat(chr(cp)).startswith("N")),
    }
    unsafe = nfc_unsafe_set()
    tables["kNfcUnsafe"] = unicode_ranges(lambda cp: cp in unsafe)
    decomp, ccc_ranges, excluded = nfc_tables()
    tables["kCompositionExcluded"] = unicode_ranges(lambda cp: cp in excluded)
    lines = ["// Generated by tools/hf_fixtures.py --unicode-table from Python %s unicodedata, Unicode %s."
             % (sys.version.split()[0], unicodedata.unidata_version),
             "// Sorted tables for binary search. Do not edit by hand.",
             "#define BNA_UNICODE_VERSION \"%s\"" % unicodedata.unidata_version,
             "// Inclusive code point ranges: general category L*, N*; code points NFC may change or",
             "// combine with a neighbour; full composition exclusions (canonical decompositions NFC does",
             "// not give back: singletons, non-starter decompositions, script-specific, post-composition)."]
    for name, rs in tables.items():
        lines += table_lines(name, "CodeRange", rs, "{0x%X, 0x%X},", 6)
    lines.append("// Canonical combining classes != 0: inclusive ranges {lo, hi, ccc}.")
    lines += table_lines("kCombiningClass", "CccRange", ccc_ranges, "{0x%X, 0x%X, %d},", 5)
    lines.append("// Canonical decomposition mappings, one level (apply recursively), sorted by code point:")
    lines.append("// {cp, first, second} with second 0 for a singleton. Hangul syllables are algorithmic.")
    lines += table_lines("kCanonicalDecomposition", "Decomposition", decomp, "{0x%X, 0x%X, 0x%X},", 4)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    sizes = {k: len(v) for k, v in tables.items()}
    sizes.update(kCombiningClass=len(ccc_ranges), kCanonicalDecomposition=len(decomp), excluded=len(excluded))
    log("unicode table", unicodedata.unidata_version, sizes)


# ---------------------------------------------------------------- tokenizers
def build_tokenizers(out):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers

    def train(name, pre, specials, vocab, normalizer=None, ignore_merges=False, extra_added=()):
        tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
        if normalizer is not None:
            tok.normalizer = normalizer
        tok.pre_tokenizer = pre
        tok.decoder = decoders.ByteLevel()
        tr = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False,
                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([TRAIN_TEXT], trainer=tr)
        for t in extra_added:
            if t.special:
                tok.add_special_tokens([t])
            else:
                tok.add_tokens([t])
        log("tokenizer", name, "vocab", tok.get_vocab_size())
        return tok

    toks = {}
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    toks["gpt2"] = train("gpt2", bl, ["<|endoftext|>"], 340,
                         extra_added=[AddedToken("<mask>", lstrip=True, special=True, normalized=False)])

    def split_bl(pat):
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pat), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])

    toks["qwen2"] = train("qwen2", split_bl(QWEN2_RE), ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 350,
                          normalizer=normalizers.NFC(),
                          extra_added=[AddedToken("<think>", special=False, normalized=False),
                                       AddedToken("</think>", special=False, normalized=False)])
    toks["llama3"] = train("llama3", split_bl(CL100K_RE), ["<|begin_of_text|>", "<|end_of_text|>"], 360,
                           ignore_merges=True)
    bos = toks["llama3"].token_to_id("<|begin_of_text|>")
    toks["llama3"].post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    toks["glm4"] = train("glm4", split_bl(CL100K_RE),
                         ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>",
                          "<|user|>", "<|assistant|>", "<|observation|>"], 370)
    os.makedirs(os.path.join(out, "tokenizers"), exist_ok=True)
    paths = {}
    for k, t in toks.items():
        p = os.path.join(out, "tokenizers", k + ".json")
        t.save(p)
        paths[k] = p
    # GPT-2's original files store merges as "a b" strings; rewrite that one so both forms are covered.
    with open(paths["gpt2"]) as f:
        j = json.load(f)
    m = j["model"]["merges"]
    if m and isinstance(m[0], list):
        j["model"]["merges"] = [" ".join(x) for x in m]
    with open(paths["gpt2"], "w") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
    toks["gpt2"] = Tokenizer.from_file(paths["gpt2"])
    cases = {"strings": HARD_STRINGS, "tokenizers": {}}
    for k, t in toks.items():
        ids = [t.encode(s, add_special_tokens=False).ids for s in HARD_STRINGS]
        dec = [t.decode(x, skip_special_tokens=False) for x in ids]
        cases["tokenizers"][k] = {"file": k + ".json", "ids": ids, "decoded": dec,
                                  "with_special": [t.encode(s).ids for s in HARD_STRINGS[:3]]}
    with open(os.path.join(out, "tokenizer_cases.json"), "w") as f:
        json.dump(cases, f, ensure_ascii=False)
    return toks, paths


# ---------------------------------------------------------------- models
def randomize(model, torch, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                if "norm" in name or ".ln_" in name or name.startswith("ln_") or ".ln_f" in name:
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


SEEDS = {"gpt2": 11, "qwen2": 22, "qwen3": 33, "llama3": 44, "glm4": 55}


def build_models(out, toks, paths):
    import shutil
    import torch
    import transformers as tf
    from safetensors.torch import save_file
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    log("torch", torch.__version__, "transformers", tf.__version__)
    V = 384
    common = dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    specs = []
    specs.append(("gpt2", "gpt2", lambda: tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=V, n_positions=128, n_embd=64, n_layer=2, n_head=4, n_inner=96,
        bos_token_id=0, eos_token_id=0)), "f32", None))
    specs.append(("qwen2", "qwen2", lambda: tf.Qwen2ForCausalLM(tf.Qwen2Config(
        **common, rope_theta=10000.0, tie_word_embeddings=False, rms_norm_eps=1e-6)), "bf16", None))
    specs.append(("qwen3", "qwen2", lambda: tf.Qwen3ForCausalLM(tf.Qwen3Config(
        **common, head_dim=16, rope_theta=1000000.0, tie_word_embeddings=True, rms_norm_eps=1e-6)),
        "bf16", None))

    def llama():
        rs = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 16}
        try:
            cfg = tf.LlamaConfig(**common, rope_parameters=dict(rs, rope_theta=500000.0), rms_norm_eps=1e-5,
                                 tie_word_embeddings=False)
        except Exception:
            cfg = tf.LlamaConfig(**common, rope_theta=500000.0, rope_scaling=rs, rms_norm_eps=1e-5,
                                 tie_word_embeddings=False)
        log("llama config rope:", getattr(cfg, "rope_parameters", None), getattr(cfg, "rope_scaling", None))
        return tf.LlamaForCausalLM(cfg)
    specs.append(("llama3", "llama3", llama, "f32", "40KB"))
    specs.append(("glm4", "glm4", lambda: tf.Glm4ForCausalLM(tf.Glm4Config(
        **common, head_dim=16, partial_rotary_factor=0.5, attention_bias=True, rope_theta=10000.0,
        rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=0)), "bf16", None))

    prompt = ("The quick brown fox, 12345 café 😀 jumps!\n  def f(x): return x  <|endoftext|> "
              "and more text to make the prompt a little longer")
    for fam, tokname, make, wdtype, shard in specs:
        try:
            torch.manual_seed(0)
            model = make().eval()
            randomize(model, torch, seed=SEEDS[fam])
            if getattr(model.config, "tie_word_embeddings", False):
                model.tie_weights()
            if wdtype == "bf16":
                with torch.no_grad():
                    for p in model.parameters():
                        p.copy_(p.bfloat16().float())
            d = os.path.join(out, fam)
            os.makedirs(d, exist_ok=True)
            if wdtype == "bf16":
                # .to(bfloat16) also rounds buffers (RoPE inv_freq); restore them so the references
                # use the fp32 frequencies a model loaded from these files computes.
                bufs = {n: b.detach().clone() for n, b in model.named_buffers()}
                model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
                model.to(torch.float32)
                with torch.no_grad():
                    for n, b in model.named_buffers():
                        if n in bufs:
                            b.copy_(bufs[n])
            elif shard:
                model.save_pretrained(d, safe_serialization=True, max_shard_size=shard)
            else:
                model.save_pretrained(d, safe_serialization=True)
            for junk in ("generation_config.json",):
                if os.path.exists(os.path.join(d, junk)):
                    os.remove(os.path.join(d, junk))
            shutil.copy(paths[tokname], os.path.join(d, "tokenizer.json"))
            ids = toks[tokname].encode(prompt, add_special_tokens=False).ids
            ids = ids[:24]
            x = torch.tensor([ids], dtype=torch.long)
            with torch.no_grad():
                o32 = model.float()(x, output_hidden_states=True)
                l32 = o32.logits[0].clone()
                o64 = model.double()(x, output_hidden_states=True)
            ref = {"input_ids": x[0].clone(), "logits_f64": o64.logits[0].clone().contiguous(),
                   "logits_f32": l32.contiguous()}
            rot = getattr(getattr(model, "model", None), "rotary_emb", None)
            if rot is not None:
                ref["inv_freq"] = rot.inv_freq.detach().double().clone()
                log(fam, "rope_type", getattr(rot, "rope_type", None))
            for i, h in enumerate(o64.hidden_states):
                ref["hidden_f64_%d" % i] = h[0].clone().contiguous()
            save_file(ref, os.path.join(d, "reference.safetensors"))
            err = (l32.double() - o64.logits[0]).abs().max().item()
            log(fam, "T", len(ids), "files", sorted(os.listdir(d)), "max|f32-f64|", err,
                "logit scale", o64.logits.abs().max().item())
            log(fam, "params", [(n, tuple(p.shape)) for n, p in model.named_parameters()][:14])
        except Exception:
            log("FAILED", fam)
            traceback.print_exc()
    # Sources of the pieces the C++ port must mirror (debug only; not committed).
    try:
        import inspect
        from transformers.models.glm4 import modeling_glm4 as g4
        from transformers.models.llama import modeling_llama as ll
        from transformers import modeling_rope_utils as ru
        with open(os.path.join(out, "sources.txt"), "w") as f:
            for obj in (g4.apply_rotary_pos_emb, g4.rotate_half, g4.Glm4DecoderLayer.forward, g4.Glm4MLP,
                        ll.apply_rotary_pos_emb, ru._compute_llama3_parameters):
                try:
                    f.write(inspect.getsource(obj) + "\n\n")
                except Exception as e:
                    f.write("# %r: %s\n" % (obj, e))
    except Exception:
        traceback.print_exc()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--unicode-table")
    a = ap.parse_args()
    if a.unicode_table:
        write_unicode_table(a.unicode_table)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        toks, paths = build_tokenizers(a.out)
        build_models(a.out, toks, paths)


if __name__ == "__main__":
    main()
