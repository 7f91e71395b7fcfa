#!/usr/bin/env bash
# Everything this project measures on an NVIDIA GPU, in one command, results under $OUT.
#
#   bash tools/gpu_session.sh            # on the GPU machine (python3 with CUDA torch)
#   bash tools/gpu_session.sh --dry-run  # here, on the CPU, small sizes: checks the script
#
# 1. nvidia-smi, for the card and driver;
# 2. tools/gpu_check.py: the torch CUDA backend against the CPU FP32 result at 720p
#    and 1080p, the run-ahead path, and timings (gpu_check.md / gpu_check.json);
# 3. if PyAV imports: tools/bench_pipeline.py at 1080p on torch CUDA, batch 1 and 4
#    (bench_pipeline.md). A GPU machine without PyAV gets it as a carried wheel: here,
#    `python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12
#    --implementation cp --platform manylinux_2_28_x86_64 -d .whl av==18.1.0` (36 MB,
#    with .whl/ in .git/info/exclude); the script installs any .whl/*.whl it finds;
# 4. if PyAV imports: tools/bench_hdr.py at 1080p, to see how the tone mapping's
#    strips scale on a many-core machine (bench_hdr.md);
# 5. if PyAV imports: tools/bench_tracks.py at 1080p, what an editor's tracks cost the
#    encode thread on that machine's CPU (bench_tracks.md).
# Each step has its own time limit (300 + 2 x 110 + 40 + 30 s: under the device tool's
# 600 s a call), writes its results as it goes, and a failing step does not stop the next.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-session-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--dry-run" ]]; then
    check=(--device cpu --size 96x64 --quick)
    bench=(--device cpu --size 160x96 --frames 8 --repeat 1 --model-size 64)
    hdr=(--size 160x96 --frames 4)
    tracks=(--size 160x96 --iters 1 --repeat 1)
else
    check=()
    bench=(--device cuda --size 1920x1080 --frames 96 --repeat 3 --model-size 512)
    hdr=(--size 1920x1080 --frames 10)
    tracks=(--size 1920x1080 --iters 5 --repeat 3)
fi

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/p3m-site .whl/*.whl \
        && export PYTHONPATH=/tmp/p3m-site
fi

(nvidia-smi || echo "no nvidia-smi here") >"$OUT/nvidia-smi.txt" 2>&1

timeout 300 "$PY" tools/gpu_check.py --out "$OUT" "${check[@]}" 2>&1 | tee "$OUT/gpu_check.log"
echo "gpu_check exit: ${PIPESTATUS[0]}" | tee -a "$OUT/gpu_check.log"

if "$PY" -c "import av" 2>/dev/null; then
    for batch in 1 4; do
        timeout 110 "$PY" tools/bench_pipeline.py --backend torch --batch "$batch" "${bench[@]}" 2>&1
        echo "bench_pipeline batch $batch exit: $?"
    done | tee "$OUT/bench_pipeline.md"
    timeout 40 "$PY" tools/bench_hdr.py "${hdr[@]}" 2>&1 | tee "$OUT/bench_hdr.md"
    echo "bench_hdr exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench_hdr.md"
    timeout 30 "$PY" tools/bench_tracks.py "${tracks[@]}" 2>&1 | tee "$OUT/bench_tracks.md"
    echo "bench_tracks exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench_tracks.md"
else
    echo "PyAV is not installed here: carry its wheel in .whl/ (see the top of this script)" | tee "$OUT/bench_pipeline.md"
fi
