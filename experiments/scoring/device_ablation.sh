#!/bin/bash
# MLP ablation on the lent 16-core machine: the tailored MLP with output_scale=30 and the last bias at
# psi(mean T) (the authors' default is output_scale=1, bias 0), 14 seeds x 4 replications, KS-mis and overlap,
# on the authors' fixed schedule (200 epochs on all rows, last weights; the learner's default now stops on convergence).
set -u
export PYTHONPATH=$PWD/packages:$PWD/.venv/lib/python3.11/site-packages-carry OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
for s in $(seq 40 53); do
  timeout 110 python3 -m fourfold experiment=scoring/quick preset=mlp_scale30 seed=$s \
    scoring.replications.linear=0 scoring.semi_replications.linear=0 scoring.replications.xgboost=0 \
    scoring.semi_replications.xgboost=0 scoring.semi_synthetic=[] scoring.real=[] \
    scoring.simulations=[kang_schafer_mis,overlap_2.5] scoring.mlp_datasets=[kang_schafer_mis,overlap_2.5] \
    scoring.replications.mlp=4 scoring.mlp.max_epochs=200 scoring.mlp.patience=null \
    scoring.mlp.validation_fraction=0 scoring.mlp.output_scale=30 scoring.mlp.bias_init=prior \
    scoring.learner_methods=[tailored] hydra.run.dir=runs_dev/scoring/mlp_scale30/seed_$s > /dev/null 2>&1 &
done
wait
tar czf ${OUT:-/tmp}/ablation.tar.gz runs_dev; ls runs_dev/scoring/mlp_scale30/*/metrics.json | wc -l
