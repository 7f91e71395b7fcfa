#!/usr/bin/env python3
"""How long a short run takes from the command to the finished file, and its peak memory.

    python tools/bench_launch.py --runs 5

A run on ONNX Runtime whose frame graph is already exported (the second run of a
size) does not import torch (p3m_live/model/__init__.py). This times that run in a
fresh process beside the same run with torch imported first, as every run did
before, interleaved: a 3-frame 640x360 clip, P3M-Net's test checkpoint at model
size 64 (the network's own time is not what is measured). Wall seconds and peak
resident memory (ru_maxrss) of each process, median over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.media import make_clip  # noqa: E402
from tools._common import random_weights  # noqa: E402

CHILD = """
import json, resource, sys
if sys.argv[1] == "torch":
    import torch  # noqa: F401
from p3m_live.cli import main
rc = main(json.loads(sys.argv[2]))
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def launch(variant: str, argv: list[str], env: dict[str, str]) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, variant, json.dumps(argv)], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"the {variant} run failed: {r.stderr.strip()[-400:]}")
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "XDG_CONFIG_HOME": str(tmp / "config")}
        clip = make_clip(tmp / "in.mp4", frames=3, size=(640, 360), audio_rate=None)
        argv = [str(clip), "-o", str(tmp / "out.mp4"), "--overwrite", "-q", "--backend", "onnxruntime"]
        argv += ["--weights", str(random_weights(tmp)), "--model-size", "64", "--background", "#3366cc"]
        launch("plain", argv, env)  # exports the graph into the cache
        runs: dict[str, list[dict]] = {"plain": [], "torch": []}
        for _ in range(args.runs):
            for variant in runs:
                runs[variant].append(launch(variant, argv, env))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| run | torch imported | seconds to the finished file | peak memory MB |")
    print("| --- | --- | ---: | ---: |")
    names = {"plain": "ONNX Runtime, graph cached (p3m-live)", "torch": "the same, torch imported first"}
    for variant, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["rss_mb"] for r in results)
        print(f"| {names[variant]} | {results[0]['torch']} | {seconds:.2f} | {rss:.0f} |")
    plain, torch = (statistics.median(r["seconds"] for r in runs[v]) for v in runs)
    print(f"\ntorch first / p3m-live: {torch / plain:.2f}x the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
