#!/usr/bin/env bash
# experiments/critical/gpu_check.sh  (a <= 10-minute smoke of the paper preset on one GPU; not run here: no GPU)
# The paper preset's code path at toy budgets: the 85M GPT-2 (12L/768d/12H), 7-digit pre-training (200
# steps), the 8-digit generalisation and Table 1 stages, and RL on 7 -> 8 digits with A2C (critic + GAE),
# T = 2, ternary reward, alpha = 5, standard and prioritized (beta = 150) KL, 2 iterations x 8 episodes.
# It checks that every stage runs on the GPU and writes its results; the numbers mean nothing at this budget.
#   bash experiments/critical/gpu_check.sh            # on a machine with a GPU
#   GPU_CHECK_DRY=1 bash experiments/critical/gpu_check.sh   # CPU dry run (micro model, 2 -> 3 digits)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
stamp=$(date +%Y-%m-%d_%H-%M-%S)
out=runs/critical/gpu_check/$stamp
digits=7
if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
  # micro model (512 positions): 2 -> 3 digits instead of 7 -> 8; otherwise the same stages and settings
  extra=(trainer=cpu critical.model_size=micro critical.threads=1)
  digits=2
else
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device')"
  extra=(trainer=gpu)
fi
start=$(date +%s)
timeout 600 "$PY" -m fourfold experiment=critical/paper "${extra[@]}" \
  "hydra.run.dir=$out" "critical.cache_dir=$out/cache" \
  "critical.stages=[pretrain,generalisation,table1,rl]" \
  "critical.degrees=[{n_digits: $digits, mix_fraction: 0.0, steps: 200}]" critical.main_degree=0 \
  critical.pretrain.warmup_steps=20 critical.pretrain.batch_size=32 \
  critical.generalisation.examples=8 critical.generalisation.extra_digits=1 \
  critical.table1.examples=8 critical.table1.weight_rollouts=4 \
  critical.rl.iterations=2 critical.rl.episodes=8 critical.rl.eval_every=1 \
  critical.rl.eval_examples=8 critical.rl.comfort_examples=4 critical.rl.beta_rule.examples=8 \
  "critical.rl.seeds=[0]" \
  "critical.rl.conditions=[{name: standard, mode: standard, beta: 0}, {name: prioritized_b150, mode: prioritized, beta: 150}]" \
  trainer.enable_progress_bar=false
for f in metrics.json results/generalisation.csv results/table1.csv results/rl_curves.csv; do
  [ -s "$out/$f" ] || { echo "gpu_check: missing $out/$f" >&2; exit 1; }
done
echo "gpu_check: OK in $(( $(date +%s) - start )) s; results in $out"
