#!/usr/bin/env bash
# Leave one scenario out: the fast ranker trained without recommendation, and without routing,
# with the main run's settings and budget (results/2026-12-02-choice-ranker/training/train_config.yaml:
# listwise choice objective, LoRA r16 all-linear, lr 2e-4 constant, batch 1 x 4, 320 updates).
# Run from the project root, beside ../shared/data; one thread per process, the two side by side.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
T=rec-movie,rec-music,rec-game,router-performance,router-balance,router-cost
L=results/2026-12-02-leave-one-out
J=results/2026-12-02-choice-ranker          # the joint run (iranker-135m) and its held-out evals
B=results/2026-12-01-choice-ranker/base      # the base and the baselines on the same seeded examples

# 1. step data: the joint run's rows without one scenario; the same held-out rows for every run
iranker data steps --tasks $T --split test  --data-dir ../shared/data --out runs/steps-test --seed 0 --max-per-task 40
iranker data steps --tasks $T --split train --data-dir ../shared/data --out runs/steps-no-rec --seed 0 --max-per-task 2000 --leave-out recommendation
iranker data steps --tasks $T --split train --data-dir ../shared/data --out runs/steps-no-routing --seed 0 --max-per-task 2000 --leave-out routing

# 2. train (training/no-rec.yaml, training/no-routing.yaml = the joint config with another dataset,
#    output_dir and max_steps 320); held-out pi(best) on all six tasks every 60 updates
iranker train --config $L/training/no-rec.yaml &
iranker train --config $L/training/no-routing.yaml &
wait
cp runs/leave-out/no-rec/train_log.jsonl $L/training/no-rec.train_log.jsonl
cp runs/leave-out/no-routing/train_log.jsonl $L/training/no-routing.train_log.jsonl
python benchmarks/train_curves.py $J/training/listwise.train_log.jsonl $L/training/no-rec.train_log.jsonl \
    $L/training/no-routing.train_log.jsonl --names joint,no-rec,no-routing --out $L/training/curves

# 3. package the final adapters (fp16), so the evaluated models are in this folder
python -m iranker.train.package runs/leave-out/no-rec $L/no-rec-model
python -m iranker.train.package runs/leave-out/no-routing $L/no-routing-model

# 4. each left-out model on the scenario it never saw: the seeded examples of the joint evals
iranker eval --tasks rec-movie,rec-music,rec-game --methods iterative --model $L/no-rec-model \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $L/no-rec-on-rec &
iranker eval --tasks router-performance,router-balance,router-cost --methods iterative --model $L/no-routing-model \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $L/no-routing-on-routing &
wait

# 5. paired comparisons: base first (Δ = each − base), then joint first (Δ = left-out − joint)
iranker compare $B:iterative-choice $J/trained-rec:iterative $L/no-rec-on-rec:iterative \
    --names base,joint,no-rec --out $L/compare-rec
iranker compare $J/trained-rec:iterative $L/no-rec-on-rec:iterative --names joint,no-rec --out $L/compare-rec-vs-joint
iranker compare $B:iterative-choice $J/trained-routing:iterative $L/no-routing-on-routing:iterative \
    --names base,joint,no-routing --out $L/compare-routing
iranker compare $J/trained-routing:iterative $L/no-routing-on-routing:iterative --names joint,no-routing \
    --out $L/compare-routing-vs-joint
