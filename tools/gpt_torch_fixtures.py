#!/usr/bin/env python3
"""Golden PyTorch fixture for bna's reference GPT (include/bna/model.hpp, src/model/gpt.cpp), compared by
tests/model/gpt_torch_fixture_test.cpp.

  python3 tools/gpt_torch_fixtures.py --out tests/fixtures/gpt/tiny_torch.safetensors

Needs torch and safetensors, no GPU: everything runs on the CPU, once in float64 (the oracle, ref64)
and once in float32 (the low-precision reference, ref32, of docs/numerics.md), both from the same
float32 weights. The script checks itself (SDPA against an explicit masked softmax, every attention row
non-empty, f32 close to f64) and exits 1 on a failed check, 2 on bad input.

Decisions a reader must know:
  * The config and the graph layer's neighbourhoods come from C++, never re-implemented here (that would
    mean re-implementing bna::Rng and the Hamiltonian-cycle builders). tests/fixtures/gpt/tiny_graph.json
    is written by the C++ test (BNA_UPDATE_GPT_GRAPH=1 bna_test_model
    --gtest_filter='GptTorchFixture.GraphRowsMatchCommittedFile') from its tiny_config(): the GptConfig
    JSON and, for every graph layer, the ABI rows of each KV head for T = seq_len. Attention here allows
    key j for query i iff j is in row i and j <= i (causality is applied by attention, not by the rows).
    The rows used are copied into the fixture as graph.<l>.neigh_idx (I32 [Hkv, T, D], -1 pads), so the
    C++ test catches a drift of the graph builder apart from the numerics.
  * Weights are drawn here (torch.Generator, seed SEED, float64, then rounded to float32 and stored F32):
    matrices and embeddings N(0, 0.1), LayerNorm gains 1 + 0.1 N(0, 1), biases 0.1 N(0, 1). Not the
    model's 0.02 init: at 0.02 attention is almost uniform and GELU almost linear, so a wrong softmax
    scale or GELU variant would hide under the f32 floor. Non-trivial LayerNorm parameters test them.
  * The model is docs/gpt.md's: x = wte[idx] + wpe[pos]; per layer x += attn(LN1 x) Wo^T,
    x += gelu_tanh(LN2 x W1^T) W2^T; logits = LNf(x) Whead^T; LayerNorm eps 1e-5; no linear biases;
    Wqkv rows are [q heads 0..Hq-1 | k heads 0..Hkv-1 | v heads 0..Hkv-1], dh rows each, W [out, in];
    query head hq uses KV head hq // (Hq / Hkv); scale 1/sqrt(dh). Loss: mean cross-entropy over the
    targets >= 0 (a few targets are -1 to test that).
  * Training is torch's own code: torch.optim.AdamW (two groups: weight decay on exactly the C++
    ParamInfo::decay parameters, attn.qkv, attn.proj, mlp.fc, mlp.proj, head; none on embeddings and
    LayerNorm), torch.nn.utils.clip_grad_norm_ on every gradient, and the lr of step s = 1..steps set by
    bna::train::lr_at's rule (linear warmup, then cosine to lr_min at the last step). Every step uses
    the same batch (what bna::train::train does with a constant BatchFn and accum 1); losses[s-1] is
    the loss before update s.

Fixture contents (F32 unless noted; names are the C++ parameter names):
  <name>                     initial weights, shapes of Gpt::params()
  input_ids, targets         I32 [B, T]
  logits / logits32          F64 / F32 [B, T, V] (ref64 / ref32)
  loss / loss32              F64 / F32 [1]
  grad.<name> / grad32.<name>      gradient of the mean loss, F64 / F32
  losses, grad_norms (F64) / losses32, grad_norms32 (F32)   [steps]; grad norm before clipping
  lrs                        F64 [steps]
  final.<name> / final32.<name>    parameters after the steps, F64 / F32
  graph.<l>.neigh_idx        I32 [Hkv, T, D], for every graph layer
  __metadata__: format, config (GptConfig JSON), train (hyperparameters + decayed names, JSON), B, T,
                seed, init, torch (version), graph_sha256 (of tiny_graph.json)
"""
import argparse
import hashlib
import json
import math
import os
import sys

SEED = 20261127
B = 2
INIT_STD = 0.1
LN_STD = 0.1
IGNORED = [(0, 0), (0, 17), (1, -1)]  # (b, t) positions whose target is -1 (-1: the last token)

# AdamW, schedule and clipping (bna::train::TrainOptions fields; betas, eps and wd are the C++ defaults).
TRAIN = {
    "steps": 10,
    "lr": 3e-3,
    "lr_min": 3e-4,
    "warmup": 3,
    "beta1": 0.9,
    "beta2": 0.95,
    "eps": 1e-8,
    "weight_decay": 0.1,
    "grad_clip": 1.5,  # the grad norm is 1.26..1.88 over the 10 steps: steps 1-4 clip, 5-10 do not
    "accum": 1,
}

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_GRAPH = os.path.join(REPO, "tests", "fixtures", "gpt", "tiny_graph.json")


class BadInput(Exception):
    pass


class CheckFailed(Exception):
    pass


def lr_at(h, step):
    """bna::train::lr_at: step is 1-based."""
    if h["warmup"] > 0 and step <= h["warmup"]:
        return h["lr"] * step / h["warmup"]
    if step >= h["steps"]:
        return h["lr_min"]
    prog = (step - h["warmup"]) / max(1, h["steps"] - h["warmup"])
    return h["lr_min"] + (h["lr"] - h["lr_min"]) * 0.5 * (1.0 + math.cos(math.pi * prog))


def read_config(doc):
    c = doc.get("config")
    if not isinstance(c, dict):
        raise BadInput("graph file: no 'config' object")
    for k in ("vocab_size", "seq_len", "n_layers", "n_heads", "n_kv_heads", "d_model", "seed", "attn"):
        if k not in c:
            raise BadInput(f"graph file: config lacks '{k}'")
    cfg = dict(c)
    cfg["hkv"] = c["n_kv_heads"] if c["n_kv_heads"] > 0 else c["n_heads"]
    specs = list(c["attn"])
    if len(specs) == 1:
        specs = specs * c["n_layers"]
    if len(specs) != c["n_layers"]:
        raise BadInput(f"graph file: {len(specs)} attention specs for n_layers={c['n_layers']}")
    cfg["specs"] = specs
    if c["d_model"] % c["n_heads"] or c["n_heads"] % cfg["hkv"]:
        raise BadInput("graph file: d_model must be a multiple of n_heads and n_kv_heads a divisor of n_heads")
    return cfg


def param_table(cfg):
    """(name, shape, decay) in Gpt::params() order (src/model/gpt.cpp, Gpt::create)."""
    V, T, C = cfg["vocab_size"], cfg["seq_len"], cfg["d_model"]
    Hq, Hkv = cfg["n_heads"], cfg["hkv"]
    dh = C // Hq
    t = [("wte", (V, C), False), ("wpe", (T, C), False)]
    for l in range(cfg["n_layers"]):
        p = f"h.{l}."
        t += [(p + "ln1.w", (C,), False), (p + "ln1.b", (C,), False),
              (p + "attn.qkv", ((Hq + 2 * Hkv) * dh, C), True), (p + "attn.proj", (C, C), True),
              (p + "ln2.w", (C,), False), (p + "ln2.b", (C,), False),
              (p + "mlp.fc", (4 * C, C), True), (p + "mlp.proj", (C, 4 * C), True)]
    t += [("lnf.w", (C,), False), ("lnf.b", (C,), False), ("head", (V, C), True)]
    return t


def build_masks(torch, cfg, doc):
    """Per layer: allowed[Hkv, T, T] (bool, True = attend) and, for graph layers, neigh_idx [Hkv, T, D]."""
    T, Hkv = cfg["seq_len"], cfg["hkv"]
    graphs = {g["layer"]: g for g in doc.get("graphs", [])}
    masks, neigh = [], {}
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l, spec in enumerate(cfg["specs"]):
        kind = spec.split(":")[0]
        if kind == "dense":
            masks.append(causal.unsqueeze(0).expand(Hkv, T, T).clone())
            continue
        if kind != "graph":
            raise BadInput(f"layer {l}: attention '{spec}' is not supported here (dense and graph only)")
        g = graphs.get(l)
        if g is None or g.get("spec") != spec:
            raise BadInput(f"graph file: no rows for layer {l} with spec '{spec}'")
        rows = g["rows"]
        if len(rows) != Hkv or any(len(r) != T for r in rows):
            raise BadInput(f"graph file: layer {l} rows are not [Hkv={Hkv}][T={T}]")
        D = max(1, max(len(row) for head in rows for row in head))
        idx = torch.full((Hkv, T, D), -1, dtype=torch.int32)
        allowed = torch.zeros(Hkv, T, T, dtype=torch.bool)
        for h in range(Hkv):
            for i, row in enumerate(rows[h]):
                if len(set(row)) != len(row) or any(not (0 <= j < T) for j in row):
                    raise BadInput(f"graph file: layer {l} head {h} row {i}: duplicate or out-of-range entry {row}")
                if row:
                    idx[h, i, : len(row)] = torch.tensor(row, dtype=torch.int32)
                for j in row:
                    if j <= i:
                        allowed[h, i, j] = True
                if not allowed[h, i].any():
                    raise CheckFailed(f"layer {l} head {h} row {i} has no causal key (self should be in every row)")
        masks.append(allowed)
        neigh[l] = idx
    return masks, neigh


def attention(torch, F, q, k, v, allowed, G):
    """q [B, Hq, T, dh], k, v [B, Hkv, T, dh], allowed [Hkv, T, T] -> [B, Hq, T, dh] (query head hq uses kv head hq // G)."""
    mask = allowed.repeat_interleave(G, dim=0)  # [Hq, T, T], True = attend
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)


def attention_explicit(torch, q, k, v, allowed, G):
    k = k.repeat_interleave(G, dim=1)
    v = v.repeat_interleave(G, dim=1)
    s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~allowed.repeat_interleave(G, dim=0), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def forward(torch, F, P, idx, tgt, cfg, masks):
    """Returns logits [B, T, V] and the mean loss over targets >= 0."""
    Bb, T = idx.shape
    C, Hq, Hkv = cfg["d_model"], cfg["n_heads"], cfg["hkv"]
    dh, G = C // Hq, Hq // Hkv
    x = P["wte"][idx] + P["wpe"][:T]
    for l in range(cfg["n_layers"]):
        p = f"h.{l}."
        h = F.layer_norm(x, (C,), P[p + "ln1.w"], P[p + "ln1.b"], eps=1e-5)
        qkv = h @ P[p + "attn.qkv"].t()  # [B, T, (Hq + 2 Hkv) dh]
        q = qkv[..., : Hq * dh].reshape(Bb, T, Hq, dh).transpose(1, 2)
        k = qkv[..., Hq * dh: (Hq + Hkv) * dh].reshape(Bb, T, Hkv, dh).transpose(1, 2)
        v = qkv[..., (Hq + Hkv) * dh:].reshape(Bb, T, Hkv, dh).transpose(1, 2)
        a = attention(torch, F, q, k, v, masks[l][:, :T, :T], G)
        x = x + a.transpose(1, 2).reshape(Bb, T, C) @ P[p + "attn.proj"].t()
        h = F.layer_norm(x, (C,), P[p + "ln2.w"], P[p + "ln2.b"], eps=1e-5)
        x = x + F.gelu(h @ P[p + "mlp.fc"].t(), approximate="tanh") @ P[p + "mlp.proj"].t()
    logits = F.layer_norm(x, (C,), P["lnf.w"], P["lnf.b"], eps=1e-5) @ P["head"].t()
    counted = tgt >= 0
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logits, nll[counted].mean()


def run(torch, F, dtype, w32, table, idx, tgt, cfg, masks):
    """One reference run in `dtype`: logits, loss, gradients, then TRAIN['steps'] AdamW steps."""
    h = TRAIN
    names = [n for n, _, _ in table]

    def leaves():
        return {n: w32[n].to(dtype).clone().requires_grad_(True) for n in names}

    out = {}
    P = leaves()
    logits, loss = forward(torch, F, P, idx, tgt, cfg, masks)
    loss.backward()
    out["logits"] = logits.detach().clone()
    out["loss"] = loss.detach().clone().reshape(1)
    for n in names:
        out["grad." + n] = P[n].grad.detach().clone()

    P = leaves()
    params = [P[n] for n in names]
    decay = [P[n] for n, _, d in table if d]
    no_decay = [P[n] for n, _, d in table if not d]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": h["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], foreach=False)
    losses, norms, lrs = [], [], []
    for s in range(1, h["steps"] + 1):
        opt.zero_grad(set_to_none=True)
        _, loss = forward(torch, F, P, idx, tgt, cfg, masks)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm=h["grad_clip"])
        lr = lr_at(h, s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(loss.item())
        norms.append(float(norm))
        lrs.append(lr)
    out["losses"] = torch.tensor(losses, dtype=dtype)
    out["grad_norms"] = torch.tensor(norms, dtype=dtype)
    out["lrs"] = torch.tensor(lrs, dtype=torch.float64)
    for n in names:
        out["final." + n] = P[n].detach().clone()
    for k, t in out.items():
        if not torch.isfinite(t).all():
            raise CheckFailed(f"{dtype} run: {k} has NaN or Inf")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="fixture path, e.g. tests/fixtures/gpt/tiny_torch.safetensors")
    ap.add_argument("--graph", default=DEFAULT_GRAPH, help="config + graph rows written by the C++ test")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    try:
        with open(args.graph, "rb") as fh:
            graph_bytes = fh.read()
    except OSError as e:
        raise BadInput(f"cannot read {args.graph}: {e}")
    try:
        doc = json.loads(graph_bytes)
    except ValueError as e:
        raise BadInput(f"{args.graph} is not JSON: {e}")
    cfg = read_config(doc)
    masks, neigh = build_masks(torch, cfg, doc)
    table = param_table(cfg)
    V, T = cfg["vocab_size"], cfg["seq_len"]
    print(f"config: {json.dumps(doc['config'])}")
    print(f"torch {torch.__version__}, B={B}, T={T}, {sum(math.prod(s) for _, s, _ in table)} parameters")

    gen = torch.Generator().manual_seed(SEED)
    w32 = {}
    for name, shape, _ in table:
        z = torch.randn(shape, generator=gen, dtype=torch.float64)
        if len(shape) == 2:
            w = INIT_STD * z
        elif name.endswith(".w"):
            w = 1.0 + LN_STD * z
        else:
            w = LN_STD * z
        w32[name] = w.to(torch.float32).contiguous()
    idx = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    tgt = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    for b, t in IGNORED:
        tgt[b, t] = -1

    # Self-check: SDPA with a boolean mask (True = attend) and enable_gqa equals the written-out softmax.
    G = cfg["n_heads"] // cfg["hkv"]
    dh = cfg["d_model"] // cfg["n_heads"]
    for l, m in enumerate(masks):
        q = torch.randn(B, cfg["n_heads"], T, dh, generator=gen, dtype=torch.float64)
        k = torch.randn(B, cfg["hkv"], T, dh, generator=gen, dtype=torch.float64)
        v = torch.randn(B, cfg["hkv"], T, dh, generator=gen, dtype=torch.float64)
        err = (attention(torch, F, q, k, v, m, G) - attention_explicit(torch, q, k, v, m, G)).abs().max().item()
        if not err < 1e-12:
            raise CheckFailed(f"layer {l}: SDPA vs explicit masked softmax differ by {err}")

    r64 = run(torch, F, torch.float64, w32, table, idx, tgt, cfg, masks)
    r32 = run(torch, F, torch.float32, w32, table, idx, tgt, cfg, masks)

    d_logits = (r32["logits"].double() - r64["logits"]).abs().max().item()
    print(f"loss: f64 {r64['loss'].item():.12f}  f32 {r32['loss'].item():.9f}  max|logits32 - logits64| = {d_logits:.3g}")
    if not d_logits < 1e-4:
        raise CheckFailed(f"float32 and float64 logits differ by {d_logits} (expected ~1e-6)")
    gmax = max((r32["grad." + n].double() - r64["grad." + n]).abs().max().item() /
               max(r64["grad." + n].abs().max().item(), 1e-30) for n, _, _ in table)
    print(f"gradients: max over tensors of max|g32 - g64| / max|g64| = {gmax:.3g}")
    clip = TRAIN["grad_clip"]
    print(" step        lr     loss (f64)     loss (f32)  grad norm   clipped")
    for s in range(TRAIN["steps"]):
        n64 = r64["grad_norms"][s].item()
        print(f"{s + 1:5d} {r64['lrs'][s].item():9.3g} {r64['losses'][s].item():14.9f} {r32['losses'][s].item():14.7f}"
              f" {n64:10.5f}   {'yes' if n64 > clip else 'no'}")

    tensors = {n: w32[n] for n, _, _ in table}
    tensors["input_ids"] = idx.to(torch.int32)
    tensors["targets"] = tgt.to(torch.int32)
    for k, t in r64.items():
        tensors[k] = t.to(torch.float64).contiguous()
    for k, t in r32.items():
        if k == "lrs":
            continue
        base, _, rest = k.partition(".")
        tensors[(base + "32." + rest) if rest else (k + "32")] = t.to(torch.float32).contiguous()
    for l, t in neigh.items():
        tensors[f"graph.{l}.neigh_idx"] = t.contiguous()

    hp = dict(TRAIN)
    hp["decay"] = [n for n, _, d in table if d]
    meta = {
        "format": "bna-gpt-torch-fixture-1",
        "config": json.dumps(doc["config"]),
        "train": json.dumps(hp),
        "B": str(B),
        "T": str(T),
        "seed": str(SEED),
        "init": f"matrices and embeddings N(0, {INIT_STD}); LayerNorm gain 1 + {LN_STD} N(0, 1), bias {LN_STD} N(0, 1); "
                f"torch.Generator seed {SEED}, float64 rounded to float32",
        "torch": torch.__version__,
        "graph_sha256": hashlib.sha256(graph_bytes).hexdigest(),
    }
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.out + ".tmp"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, args.out)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {len(tensors)} tensors, {size} bytes")
    if size > 1 << 20:
        print(f"warning: {args.out} is over 1 MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        print("hint: regenerate tests/fixtures/gpt/tiny_graph.json with BNA_UPDATE_GPT_GRAPH=1 bna_test_model "
              "--gtest_filter='GptTorchFixture.GraphRowsMatchCommittedFile'", file=sys.stderr)
        sys.exit(2)
    except CheckFailed as e:
        print(f"error: self-check failed: {e}", file=sys.stderr)
        sys.exit(1)
