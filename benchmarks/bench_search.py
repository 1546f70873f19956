"""Face search benchmark: does searching with candidates find the right person more often?

On the CelebA split by identity (``core.data.split``), held-out **test** identities only:

* **probe**: the first photo (by file name) of every test identity with at least two photos, as the
  canonical 64x64 face (``core.data.celeba``), degraded to 8x8 (``core.model.degrade``, the box filter);
* **gallery**: every other test photo, indexed the way an analyst would index one
  (``core.search.gallery.build_index`` on the original JPEGs: MTCNN, eye alignment, dlib embedder),
  one record per identity: each probe's own identity (its other photos) plus all other identities
  as distractors.

Each probe is searched with: the HR face itself (an upper bound), one bicubic upscale, the
``face-8-det`` output, VarSR candidates from ``face-8`` (the first 1, 16 or 64 samples of seed =
probe number; min distance, or mean of the 3 nearest), and 4 candidates picked from 16 or 64 by
farthest-point selection (against the first 4 samples as a control). Reported: top-1 / top-10 hit
rate (the true identity is the first / among the first ten records) and the median rank.

Then the scale check: ranking 64 candidates against 1,000,000 stored 128-d embeddings with numpy
brute force and with faiss (exact flat L2 index), when installed.

    python -m benchmarks.bench_search [--data-root ../shared/data] [--pool 64] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.search.identity_eval import split_probes  # the one probe/gallery split of the search evaluations

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "SEARCH.md"
START, END = "<!-- bench_search:start -->", "<!-- bench_search:end -->"


def true_ranks(queries: list[np.ndarray], probe_ids: list[str], gallery: np.ndarray, table: Any,
               mode: str = "min", k: int = 3) -> np.ndarray:
    """Rank (1 = first) of each probe's identity among all records."""
    from core.search.rank import rank

    out = []
    for q, ident in zip(queries, probe_ids, strict=True):
        hits = rank(q, gallery, table, mode=mode, k=k, top=len(table))
        out.append(next(h.rank for h in hits if h.record_id == ident))
    return np.array(out)


def summarise(ranks: np.ndarray) -> dict[str, float]:
    """Hit rates in percent with their binomial standard errors, and the median rank."""
    out = {"median_rank": float(np.median(ranks))}
    for key, k in (("top1", 1), ("top10", 10)):
        p = float((ranks <= k).mean())
        out[key], out[key + "_se"] = p * 100, float(np.sqrt(p * (1 - p) / len(ranks)) * 100)
    return out


def _load_cache(path: Path | None, probes: list[int], pool: int) -> dict[str, Any] | None:
    """Embeddings saved by an earlier run with the same probes and pool (``--cache``), else None."""
    if path is None or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if data["probes"].tolist() != probes or int(data["pool"]) != pool:
        return None
    return data


def bench_hit_rates(args: argparse.Namespace) -> dict[str, Any]:
    import core
    from core.data.celeba import load_celeba
    from core.model.degrade import upsample_bicubic
    from core.search.degraded import degraded_embeddings
    from core.search.diverse import farthest_point_pick
    from core.search.embedders import DlibFaceEmbedder
    from core.search.gallery import build_index, load_index
    from core.search.rank import RecordTable

    t0 = time.perf_counter()
    degrade_s = float("nan")
    data = load_celeba(args.data_root / "celeba", "test", 64, attributes=False)
    probes, gallery_ix = split_probes(data.groups, data.ids)
    if args.limit:
        probes = probes[: args.limit]
    print(f"CelebA test split: {len(data)} faces, {len(set(data.groups))} identities; "
          f"{len(probes)} probes, {len(gallery_ix)} gallery photos")
    embedder = DlibFaceEmbedder()
    img_dir = args.data_root / "celeba" / "img_align_celeba"
    cached = _load_cache(args.cache, probes, args.pool)
    if cached is not None:
        print(f"embeddings from {args.cache}")
        gal, rec_ids, no_face = cached["gallery"], [str(r) for r in cached["records"]], int(cached["no_face"])
        e_hr, e_bic, e_det, e_var = cached["hr"], cached["bicubic"], cached["det"], list(cached["varsr"])
        index_s, sample_s = float(cached["index_seconds"]), float(cached["sample_seconds"])
        degrade_s = float(cached["degrade_seconds"]) if "degrade_seconds" in cached else degrade_s
    else:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "gallery.csv"
            csv.write_text("path,record_id\n" + "".join(f"{img_dir / data.ids[i]},{data.groups[i]}\n"
                                                        for i in gallery_ix))
            t = time.perf_counter()
            report = build_index(csv, Path(tmp) / "index", embedder)
            index = load_index(Path(tmp) / "index")
            index_s = time.perf_counter() - t
            t = time.perf_counter()  # the fused search's one-off cost per index, model and condition
            degraded_embeddings(index, core.load_model("face-8-det"), embedder, 0.0, cache=False)
            degrade_s = time.perf_counter() - t
        print(f"gallery index: {report.summary()}")
        gal, rec_ids, no_face = index.embeddings, index.record_ids, report.no_face
        model, det = core.load_model("face-8"), core.load_model("face-8-det")
        hr = data.float_images(torch.tensor(probes))
        lr = model.degrade(hr)
        e_hr = embedder.embed_frames(hr)
        e_bic = embedder.embed_frames(upsample_bicubic(lr, model.config.scale))
        e_det = embedder.embed_frames(det.generate(lr, None))
        e_var = []
        t = time.perf_counter()
        for n in range(len(probes)):
            e_var.append(embedder.embed_frames(model.sample(lr[n], args.pool, seed=n)))
            if (n + 1) % 25 == 0:
                print(f"  sampled and embedded {n + 1}/{len(probes)} probes x {args.pool} candidates", flush=True)
        sample_s = time.perf_counter() - t
        if args.cache:
            np.savez(args.cache, probes=np.array(probes), pool=args.pool, gallery=gal, records=np.array(rec_ids),
                     no_face=no_face, hr=e_hr, bicubic=e_bic, det=e_det, varsr=np.stack(e_var),
                     index_seconds=index_s, sample_seconds=sample_s, degrade_seconds=degrade_s)
    table = RecordTable(rec_ids)
    probe_ids = [data.groups[i] for i in probes]
    pool = args.pool
    k = args.k
    methods: dict[str, list[np.ndarray]] = {
        "HR face (upper bound)": [e[None] for e in e_hr],
        "bicubic x8 (1 image)": [e[None] for e in e_bic],
        "face-8-det (1 image)": [e[None] for e in e_det],
        "VarSR, 1 sample": [e[:1] for e in e_var],
        f"VarSR, first {k} of 16 (control)": [e[:k] for e in e_var],
        f"VarSR, diverse {k} of 16": [e[:16][farthest_point_pick(e[:16], k).indices] for e in e_var],
        "VarSR, 16 samples, min": [e[:16] for e in e_var],
        "VarSR, 16 samples, knn k=3": [e[:16] for e in e_var],
        "VarSR, mean of 16 embeddings": [e[:16].mean(0, keepdims=True) for e in e_var],
        "face-8-det + 16 VarSR samples, min": [np.concatenate([d[None], e[:16]]) for d, e in zip(e_det, e_var,
                                                                                                strict=True)],
    }
    if pool > 16:
        methods[f"VarSR, diverse {k} of {pool}"] = [e[farthest_point_pick(e, k).indices] for e in e_var]
        methods[f"VarSR, diverse 16 of {pool}"] = [e[farthest_point_pick(e, 16).indices] for e in e_var]
        methods[f"VarSR, {pool} samples, min"] = list(e_var)
    rows = {}
    for name, queries in methods.items():
        mode = "knn" if "knn" in name else "min"
        rows[name] = summarise(true_ranks(queries, probe_ids, gal, table, mode=mode, k=3))
        r = rows[name]
        print(f"  {name:34s} top-1 {r['top1']:5.1f} %  top-10 {r['top10']:5.1f} %  median rank {r['median_rank']:.0f}")
    return {
        "probes": len(probes), "gallery_photos": len(gal), "records": len(table), "no_face": no_face,
        "test_faces": len(data), "test_identities": len(set(data.groups)), "pool": pool, "k": k,
        "index_seconds": round(index_s, 1), "sample_embed_seconds": round(sample_s, 1),
        "degrade_seconds": round(degrade_s, 1),
        "total_seconds": round(time.perf_counter() - t0, 1), "methods": rows,
    }


def bench_scale(n: int, k: int, repeats: int) -> dict[str, Any]:
    from core.search.degraded import fused_record_scores
    from core.search.rank import RecordTable, faiss_available, rank

    rng = np.random.default_rng(0)
    gallery = rng.normal(0, 0.13, size=(n, 128)).astype(np.float32)  # about dlib's descriptor scale
    query = rng.normal(0, 0.13, size=(k, 128)).astype(np.float32)
    t = time.perf_counter()
    table = RecordTable([f"r{i:07d}" for i in range(n)])
    table_s = time.perf_counter() - t
    out: dict[str, Any] = {"stored": n, "candidates": k, "record_table_seconds": round(table_s, 2)}

    def timed(fn: Any) -> tuple[float, Any]:
        best, res = float("inf"), None
        for _ in range(repeats):
            t = time.perf_counter()
            res = fn()
            best = min(best, time.perf_counter() - t)
        return best, res

    out["numpy_seconds"], ref = timed(lambda: rank(query, gallery, table, top=20, backend="numpy"))
    out["numpy_knn_seconds"], _ = timed(lambda: rank(query, gallery, table, mode="knn", top=20, backend="numpy"))
    degraded = gallery + rng.normal(0, 0.05, size=gallery.shape).astype(np.float32)
    # the fused search scores every record (det + 16 candidates against the photos, det against the degraded ones)
    out["numpy_fused_seconds"], _ = timed(lambda: fused_record_scores(query[0], query[1:17], gallery, degraded, table))
    if faiss_available():
        import faiss

        t = time.perf_counter()
        index = faiss.IndexFlatL2(128)
        index.add(gallery)
        out["faiss_build_seconds"] = round(time.perf_counter() - t, 2)
        out["faiss_search_only_seconds"], _ = timed(lambda: index.search(query, 20))
        out["faiss_seconds"], got = timed(lambda: rank(query, gallery, table, top=20, backend="faiss",
                                                       faiss_index=index))
        out["faiss_same_top20"] = [h.record_id for h in got] == [h.record_id for h in ref]
        out["faiss_version"] = faiss.__version__
    for key in list(out):
        if key.endswith("_seconds") and isinstance(out[key], float):
            out[key] = round(out[key], 3)
    return out


def markdown(res: dict[str, Any]) -> str:
    lines = []
    if "hits" in res:
        h = res["hits"]
        lines += [
            f"CelebA test split (held-out identities): {h['test_faces']} faces of {h['test_identities']} "
            f"identities; {h['probes']} probes (8x8), gallery of {h['gallery_photos']} photos = {h['records']} "
            f"records (identities); MTCNN found no face in {h['no_face']} gallery photos (whole image used). "
            f"Embedder `dlib-face-resnet`. Indexing took {h['index_seconds']} s, sampling + embedding "
            f"{h['probes']} x {h['pool']} candidates {h['sample_embed_seconds']} s; degrading and restoring the "
            f"gallery for the fused search (once per index, model and condition) {h.get('degrade_seconds')} s, "
            f"{h.get('degrade_seconds', float('nan')) / h['index_seconds']:.2f}x the indexing time.",
            "",
            "| probe searched with | top-1 | top-10 | median rank |",
            "|---|---|---|---|",
        ]
        for name, r in h["methods"].items():
            lines.append(f"| {name} | {r['top1']:.1f} % (\u00b1{r['top1_se']:.1f}) | {r['top10']:.1f} % "
                         f"(\u00b1{r['top10_se']:.1f}) | {r['median_rank']:.0f} |")
        lines += ["", "(\u00b1 one binomial standard error over the probes.)"]
        lines.append("")
    if "scale" in res:
        s = res["scale"]
        lines += [
            f"Ranking {s['candidates']} candidates against {s['stored']:,} stored 128-d embeddings "
            f"(top 20, one photo per record; best of {res['meta']['repeats']} runs):",
            "",
            "| backend | seconds |",
            "|---|---|",
            f"| numpy brute force, min | {s['numpy_seconds']:.2f} |",
            f"| numpy brute force, knn k=3 | {s['numpy_knn_seconds']:.2f} |",
            f"| numpy, fused (det + 16 of them + degraded gallery, every record scored) | "
            f"{s['numpy_fused_seconds']:.2f} ({s['numpy_fused_seconds'] / s['numpy_seconds']:.2f}x min) |",
        ]
        if "faiss_seconds" in s:
            lines += [
                f"| faiss {s['faiss_version']} IndexFlatL2 search only (64 x top-20) | "
                f"{s['faiss_search_only_seconds']:.2f} |",
                f"| faiss shortlist + exact numpy re-scoring, min | {s['faiss_seconds']:.2f} |",
                f"| (faiss index build, once: {s['faiss_build_seconds']:.2f} s; same top 20 as numpy: "
                f"{'yes' if s['faiss_same_top20'] else 'no'}) | |",
            ]
        lines += ["", f"Record table for {s['stored']:,} ids, once per index: {s['record_table_seconds']:.2f} s."]
    m = res["meta"]
    lines += ["", f"Machine: {m['machine']}, {m['threads']} torch threads, torch {m['torch']}, numpy {m['numpy']}."]
    return "\n".join(lines)


def write_docs(text: str, path: Path = DOCS) -> None:
    doc = path.read_text(encoding="utf-8")
    if START not in doc or END not in doc:
        raise SystemExit(f"{path}: no {START} ... {END} block to replace")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from core.training.train import default_data_root

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=None,
                   help="data sets folder (default $VARSR_DATA or ../shared/data)")
    p.add_argument("--pool", type=int, default=64, help="VarSR samples per probe (default 64; 16 are a subset)")
    p.add_argument("--k", type=int, default=4, help="size of the diverse pick (default 4)")
    p.add_argument("--limit", type=int, default=None, help="use the first N probes only")
    p.add_argument("--scale-n", type=int, default=1_000_000, help="stored embeddings for the timing (default 1M)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-hits", action="store_true")
    p.add_argument("--skip-scale", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the results as JSON")
    p.add_argument("--cache", type=Path, help="keep (or reuse) the embeddings in this .npz between runs")
    p.add_argument("--write-docs", action="store_true", help=f"replace the results block in {DOCS.name}")
    args = p.parse_args(argv)
    args.data_root = args.data_root or default_data_root()
    if args.pool < 16:
        raise SystemExit("--pool must be at least 16")
    torch.set_num_threads(args.threads)
    res: dict[str, Any] = {"meta": {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                                    "threads": args.threads, "torch": torch.__version__, "numpy": np.__version__,
                                    "repeats": args.repeats}}
    if not args.skip_hits:
        res["hits"] = bench_hit_rates(args)
    if not args.skip_scale:
        res["scale"] = bench_scale(args.scale_n, 64, args.repeats)
        print(json.dumps(res["scale"], indent=1))
    text = markdown(res)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    if args.write_docs:
        write_docs(text)
        print(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
