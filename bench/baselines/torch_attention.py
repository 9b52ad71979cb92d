#!/usr/bin/env python3
"""PyTorch baselines for bench/attention_cuda.cpp, all measured in one process on one GPU.

Shapes: B=1, H=32, dh=128, bf16, T in {4096, 16384, 65536} (same as the C++ bench).
  - SDPA dense causal, cuDNN backend and flash backend (FlashAttention-2).
  - FlexAttention (torch.compile) with the Butterfly streams mask: causal window W=64 (band [i-W, i]),
    landmarks every S=64 (j % S == 0, j < i), and one cycle's extras (2 random keys per row, the same
    construction as the C++ bench: in [0, i-W-1], off the landmarks, distinct), plus the same mask
    without extras.
  - Forward+backward (--bwd): SDPA cuDNN, SDPA flash and FlexAttention (window + landmarks + cycle),
    timed as one forward and one backward (out.backward(dout)) per repeat.
  - Decode (--decode-T): one query per head (position Tk-1) against a Tk-key cache, SDPA cuDNN,
    flash and efficient backends (no mask needed: the last query sees every key).
Timing: CUDA events, warm-up, median of repeats. Useful TFLOP/s counts allowed pairs only
(4 * dh flops per pair). Output: a table on stdout and JSON (--json PATH).
"""
import argparse
import json
import os

import torch
import torch.nn.functional as F


def median_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2], times[0], times[-1]


def make_extras(H, T, W, S, gen, device):
    """[H, T, 2] int32, -1 padded: per row two distinct keys in [0, i-W-1] that are not landmarks."""
    i = torch.arange(T, device=device).view(1, T, 1)
    hi = (i - W).clamp(min=0)  # number of candidate keys
    draws = (torch.rand(H, T, 8, generator=gen, device=device) * hi).floor().long()
    ok = (hi > 0) & (draws % S != 0)
    ex = torch.full((H, T, 2), -1, dtype=torch.long, device=device)
    # first valid draw, then the first valid draw that differs from it
    big = 8
    idx = torch.arange(8, device=device).view(1, 1, 8)
    first_pos = torch.where(ok, idx, torch.full_like(idx, big)).min(-1).values
    has1 = first_pos < big
    first = torch.gather(draws, 2, first_pos.clamp(max=7).unsqueeze(-1)).squeeze(-1)
    ok2 = ok & (draws != first.unsqueeze(-1)) & (idx > first_pos.unsqueeze(-1))
    second_pos = torch.where(ok2, idx, torch.full_like(idx, big)).min(-1).values
    has2 = second_pos < big
    second = torch.gather(draws, 2, second_pos.clamp(max=7).unsqueeze(-1)).squeeze(-1)
    ex[..., 0] = torch.where(has1, first, -1)
    ex[..., 1] = torch.where(has1 & has2, second, -1)
    return ex.int()


def save(path, out):
    """Writes the results so far (atomically), so a run cut short still leaves its numbers."""
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", default="4096,16384,65536")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", default="")
    ap.add_argument("--skip-flex", action="store_true")
    ap.add_argument("--bwd", action="store_true")
    ap.add_argument("--decode-T", default="32768,131072")
    args = ap.parse_args()

    from torch.nn.attention import SDPBackend, sdpa_kernel

    dev = "cuda"
    B, H, dh, W, S = 1, 32, 128, 64, 64
    gen = torch.Generator(device=dev)
    gen.manual_seed(20261126)
    out = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "shape": {"B": B, "H": H, "dh": dh, "dtype": "bf16", "W": W, "S": S, "C": 2},
        "timing": {"warmup": args.warmup, "repeats": args.repeats, "stat": "median of CUDA-event times"},
        "results": [],
    }
    print(f"device: {out['device']}  torch {out['torch']}  cudnn {out['cudnn']}")
    print(f"{'T':>8} {'kernel':<22} {'median_ms':>10} {'TFLOP/s':>9} {'pairs/query':>12}")

    flex = None
    if not args.skip_flex:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention)

    for T in [int(t) for t in args.T.split(",") if t]:
        q = torch.randn(B, H, T, dh, device=dev, dtype=torch.bfloat16, generator=gen)
        k = torch.randn(B, H, T, dh, device=dev, dtype=torch.bfloat16, generator=gen)
        v = (torch.rand(B, H, T, dh, device=dev, dtype=torch.bfloat16, generator=gen) * 2 - 1)
        dense_pairs = H * T * (T + 1) / 2

        def record(name, pairs, stats, flop_per_pair_dh=4.0):
            med, lo, hi = stats
            tf = flop_per_pair_dh * dh * pairs * B / (med * 1e-3) / 1e12
            ppq = pairs / (H * T)
            print(f"{T:>8} {name:<22} {med:>10.3f} {tf:>9.1f} {ppq:>12.1f}", flush=True)
            out["results"].append({"kernel": name, "T": T, "median_ms": med, "min_ms": lo, "max_ms": hi,
                                   "useful_tflops": tf, "pairs_per_query": ppq})

        for name, be in (("sdpa_cudnn_causal", SDPBackend.CUDNN_ATTENTION),
                         ("sdpa_flash_causal", SDPBackend.FLASH_ATTENTION)):
            try:
                with sdpa_kernel([be]):
                    fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    reps = min(args.repeats, 5) if T >= 65536 else args.repeats
                    record(name, dense_pairs, median_ms(fn, args.warmup, reps))
            except RuntimeError as e:
                print(f"{T:>8} {name:<22} failed: {str(e).splitlines()[0]}")

        if args.bwd:
            qg, kg, vg = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
            dout = torch.randn_like(q)
            for name, be in (("sdpa_cudnn_causal_fwd_bwd", SDPBackend.CUDNN_ATTENTION),
                             ("sdpa_flash_causal_fwd_bwd", SDPBackend.FLASH_ATTENTION)):
                try:
                    with sdpa_kernel([be]):
                        def fb():
                            o = F.scaled_dot_product_attention(qg, kg, vg, is_causal=True)
                            o.backward(dout)
                        reps = min(args.repeats, 3) if T >= 65536 else args.repeats
                        record(name, dense_pairs, median_ms(fb, 1 if T >= 65536 else args.warmup, reps), 10.0)
                except RuntimeError as e:
                    print(f"{T:>8} {name:<22} failed: {str(e).splitlines()[0]}")
                qg.grad = kg.grad = vg.grad = None
            torch.cuda.empty_cache()

        if flex is None:
            continue
        ex = make_extras(H, T, W, S, gen, dev)
        i = torch.arange(T, device=dev)
        lim = i - W
        land = torch.where(lim > 0, (lim - 1) // S + 1, torch.zeros_like(lim))
        base_pairs = float((torch.minimum(i, torch.tensor(W, device=dev)) + 1 + land).sum()) * H
        ext_pairs = float((ex >= 0).sum())

        def mask_base(b, h, qi, kv):
            return (kv <= qi) & ((qi - kv <= W) | (kv % S == 0))

        def mask_cycle(b, h, qi, kv):
            return mask_base(b, h, qi, kv) | (ex[h, qi, 0] == kv) | (ex[h, qi, 1] == kv)

        for name, mm, pairs, per_head in (("flex_window_landmark", mask_base, base_pairs, False),
                                          ("flex_window_landmark_cycle", mask_cycle, base_pairs + ext_pairs, True)):
            try:
                bm = create_block_mask(mm, B=None, H=H if per_head else None, Q_LEN=T, KV_LEN=T, device=dev,
                                       _compile=True)
                fn = lambda: flex(q, k, v, block_mask=bm)
                record(name, pairs, median_ms(fn, args.warmup, args.repeats))
                if args.bwd and per_head:
                    qg, kg, vg = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
                    dout = torch.randn_like(q)
                    def fb():
                        o = flex(qg, kg, vg, block_mask=bm)
                        o.backward(dout)
                    reps = min(args.repeats, 3) if T >= 65536 else args.repeats
                    record(name + "_fwd_bwd", pairs, median_ms(fb, 2, reps), 10.0)
                    del qg, kg, vg, dout
                del bm
            except Exception as e:  # compile or OOM failures are reported, not fatal
                print(f"{T:>8} {name:<22} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        del q, k, v
        torch.cuda.empty_cache()
        save(args.json, out)

    # ---- decode: one query per head against a Tk-key cache ----
    for Tk in [int(t) for t in args.decode_T.split(",") if t]:
        q = torch.randn(B, H, 1, dh, device=dev, dtype=torch.bfloat16, generator=gen)
        k = torch.randn(B, H, Tk, dh, device=dev, dtype=torch.bfloat16, generator=gen)
        v = (torch.rand(B, H, Tk, dh, device=dev, dtype=torch.bfloat16, generator=gen) * 2 - 1)
        for name, be in (("sdpa_cudnn_decode", SDPBackend.CUDNN_ATTENTION),
                         ("sdpa_flash_decode", SDPBackend.FLASH_ATTENTION),
                         ("sdpa_efficient_decode", SDPBackend.EFFICIENT_ATTENTION)):
            try:
                with sdpa_kernel([be]):
                    fn = lambda: F.scaled_dot_product_attention(q, k, v)
                    med, lo, hi = median_ms(fn, args.warmup, max(args.repeats, 20))
                gbs = 2.0 * Tk * dh * 2 * H * B / (med * 1e-3) / 1e9
                print(f"{Tk:>8} {name:<22} {med:>10.4f} {gbs:>9.1f} GB/s", flush=True)
                out["results"].append({"kernel": name, "Tk": Tk, "Tq": 1, "median_ms": med, "min_ms": lo, "max_ms": hi,
                                       "kv_GBps": gbs, "keys_per_query": Tk})
            except RuntimeError as e:
                print(f"{Tk:>8} {name:<22} failed: {str(e).splitlines()[0]}")
        del q, k, v
        torch.cuda.empty_cache()

    save(args.json, out)


if __name__ == "__main__":
    main()
