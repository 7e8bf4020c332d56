#!/usr/bin/env bash
# A lent GPU's checks, one command: `--run checks` (the default; benchmarks/gpu/checks.py,
# issue 39) or `--run versus_meta` (ours against Meta's predictor, issue 38).
#
# Here, once (needs PyPI):  bash benchmarks/gpu.sh --build-wheels
#   builds pure-Python wheels of what the GPU machine lacks into .whl/ (ignored): sam2
#   (SAM2_BUILD_CUDA=0, no extension), hydra-core, omegaconf, antlr4-python3-runtime,
#   iopath; the machine has torch, numpy, pillow, opencv, tqdm, pyyaml and portalocker.
# On the GPU machine (device tool, carry [".whl"], results under $OUT):
#   bash benchmarks/gpu.sh
# Here, as its test (tiny sizes on the CPU, the wheels installed the same way):
#   bash benchmarks/gpu.sh --build-wheels --device cpu --tiny
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="$REPO/.whl"
PY="${PYTHON:-python3}"
DEVICE=cuda
BUILD=0
EXTRA=()
RUN=checks
LIMIT="${GPU_LIMIT_S:-460}"  # seconds for the checks (the machine's start and setup come on top)
while [ $# -gt 0 ]; do
  case "$1" in
    --build-wheels) BUILD=1 ;;
    --device) DEVICE="$2"; shift ;;
    --tiny) EXTRA+=(--tiny) ;;
    --sections) EXTRA+=(--sections "$2"); shift ;;
    --parts) EXTRA+=(--parts "$2"); shift ;;
    --run) RUN="$2"; shift ;;  # checks (issue 39) or versus_meta (issue 38)
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$BUILD" = 1 ]; then
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  # sam2 needs torch to build (no isolation) and no CUDA extension: a pure-Python wheel.
  SAM2_BUILD_CUDA=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" \
    sam2==1.1.0 hydra-core==1.3.2 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 \
    iopath==0.1.10
  ls -1 "$WHEELS"
fi
[ -n "$(ls "$WHEELS"/*.whl 2>/dev/null)" ] || { echo "no wheels in $WHEELS: run with --build-wheels here first" >&2; exit 2; }

SITE="$(mktemp -d /tmp/sam2_gpu_site.XXXXXX)"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
  "$WHEELS"/*.whl
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
OUT_DIR="${OUT:-$REPO/out/gpu}"
mkdir -p "$OUT_DIR"
"$PY" -c "import sam2, hydra, torch; print('sam2 from', sam2.__file__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true; fi
set +e
cd "$REPO"
timeout "$LIMIT" "$PY" -m "benchmarks.gpu.$RUN" --device "$DEVICE" --out "$OUT_DIR" "${EXTRA[@]}" 2>&1 \
  | tee "$OUT_DIR/$RUN.log"
status=${PIPESTATUS[0]}
rm -rf "$SITE"
echo "checks exit status $status; results in $OUT_DIR"
exit "$status"
