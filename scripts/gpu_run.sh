#!/usr/bin/env bash
# One prepared GPU session: train the fast preset on images rendered on the fly
# (~8 minutes, checkpoints every 2 minutes, resumable), export ONNX, quick eval.
#
#   scripts/gpu_run.sh                       # defaults below
#   MINUTES=0.3 BATCH=8 WORKERS=1 DEVICE=cpu SIDE_COUNT=200 scripts/gpu_run.sh   # a tiny dry run on a CPU
#
# Everything lands in $OUT (default runs/gpu; also copied to $OUT_COPY if set, e.g. the
# device tool's $OUT). Continues from $OUT/last.pt when present (--resume), else starts
# from models/xwing.pt when present (--init), else from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-8}
BATCH=${BATCH:-64}
WORKERS=${WORKERS:-8}
SIZE=${SIZE:-128}
DEVICE=${DEVICE:-auto}
RUN=${RUN:-runs/gpu}
STEPS_PER_EPOCH=${STEPS_PER_EPOCH:-500}
EPOCHS=${EPOCHS:-40}
PY=${PY:-python}
VAL=${VAL:-256}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

echo "== environment"
$PY - <<'PYEOF'
import importlib, sys
import torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
missing = []
for m in ("timm", "onnx", "onnxruntime", "cv2", "moderngl", "tqdm"):
    try:
        importlib.import_module(m)
    except Exception as e:  # noqa: BLE001
        missing.append(f"{m} ({type(e).__name__})")
if missing:
    sys.exit("missing packages: " + ", ".join(missing) + " (pip install -e '.[train]' or carry wheels)")
PYEOF

ARGS=(--preset fast --out "$RUN" --input-size "$SIZE" --batch-size "$BATCH" --workers "$WORKERS"
      --epochs "$EPOCHS" --steps-per-epoch "$STEPS_PER_EPOCH" --max-minutes "$MINUTES" --device "$DEVICE" --val-size "$VAL")
if [[ -f "$RUN/last.pt" ]]; then
  ARGS+=(--resume)
elif [[ -f models/xwing.pt ]]; then
  ARGS+=(--init models/xwing.pt)
fi
echo "== train: ${ARGS[*]}"
start=$(date +%s)
$PY -m xwing train "${ARGS[@]}"
echo "train wall-clock: $(( $(date +%s) - start )) s"

CKPT="$RUN/best.pt"; [[ -f "$CKPT" ]] || CKPT="$RUN/last.pt"
echo "== export $CKPT"
$PY -m xwing export "$CKPT" --out "$RUN/xwing.onnx"
$PY -m xwing export "$RUN/weights.pt" --out "$RUN/xwing_last.onnx" --no-check >/dev/null

if [[ "${SIDE_COUNT:-48000}" != 0 ]]; then
  # The top/bottom classifier (xwing/side.py): rendering is its whole cost; it lands next to
  # the exported model, where the pipeline finds it.
  echo "== train-side (${SIDE_COUNT:-48000} images)"
  $PY -m xwing train-side --count "${SIDE_COUNT:-48000}" --look wide --variants 32 --profile \
    --out "$RUN/xwing.side.npz"
fi

echo "== quick eval"
TESTSET=${TESTSET:-data/test}
if $PY -m xwing eval --help >/dev/null 2>&1 && [[ -d "$TESTSET" ]]; then
  $PY -m xwing eval "$RUN/xwing.onnx" "$TESTSET" --out "$RUN/eval" --refine none --limit "${NEVAL:-300}"
else
  # No test set or no `xwing eval` here: the detector + PnP on fresh rendered full frames.
  $PY - "$RUN/xwing.onnx" <<'PYEOF'
import json, sys, time
import numpy as np
from xwing.infer.detector import OnnxDetector
from xwing.geometry.metrics import rotation_error_deg
from xwing.geometry.pnp import solve_pnp
from xwing.model.keypoints import SEED_BOX_CORNERS
from xwing.geometry.projection import project_points
from xwing.render.generator import GeneratorConfig, SampleGenerator
det = OnnxDetector(sys.argv[1])
gen = SampleGenerator(GeneratorConfig(view="crop", crop_size=det.input_size, p_out_of_view=0.0, seed=424242))
kp, rot, ms = [], [], []
for i in range(int(__import__("os").environ.get("NEVAL", "100"))):
    s = gen.sample_index(i)
    t = time.perf_counter(); d = det(s.image); ms.append((time.perf_counter() - t) * 1e3)
    r = solve_pnp(d.uv, det.points_3d, s.camera.K, conf=d.conf)
    if not r.ok:
        kp.append(np.inf); rot.append(np.inf); continue
    e = np.linalg.norm(project_points(SEED_BOX_CORNERS, r.T_cam_obj, s.camera.K) - s.keypoints, axis=1)
    kp.append(float(np.median(e))); rot.append(rotation_error_deg(r.T_cam_obj[:3, :3], s.T_cam_obj[:3, :3]))
rot = np.array(rot)
res = {"n_images": len(rot), "view": "crop", "corner_err_px_median": float(np.median(kp)),
       "rot_err_deg_median": float(np.median(rot)), "flip_rate": float(np.mean(rot > 90)),
       "ms_per_image_detector": float(np.median(ms))}
print(json.dumps(res))
json.dump(res, open(sys.argv[1].replace("xwing.onnx", "quick_eval.json"), "w"), indent=2)
PYEOF
fi
if [[ -n "${OUT_COPY:-}" ]]; then
  mkdir -p "$OUT_COPY"
  cp "$RUN"/{config.json,metrics.csv,weights.pt,xwing.onnx,xwing.side.npz,xwing.infer.side.json} "$OUT_COPY"/ 2>/dev/null || true
  cp "$RUN"/quick_eval.json "$OUT_COPY"/ 2>/dev/null || true
  cp -r "$RUN"/eval "$OUT_COPY"/ 2>/dev/null || true
fi
echo "== done: $RUN"
