#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root, beside ../shared/data).
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
O=results/2026-12-04-joint
R=router-heldout-performance,router-heldout-balance,router-heldout-cost
C=rec-movie,rec-music,rec-game

# 1. step data (templates with the closing label). Joint: the held-out-LLM routing tasks (6 seen
#    LLMs; 2 aliased + re-priced copies per query, every pool size) and recommendation with the
#    last 10 history items (every pool size 2..20). rec23: recommendation only, pools of 2-3.
iranker data steps --tasks $R,$C --split train --data-dir ../shared/data --out runs/steps-joint --seed 2 \
    --max-per-task 4000 --routing-augment aliases,prices --augment-copies 2 --rec-history 10
iranker data steps --tasks $R,$C --split test --data-dir ../shared/data --out runs/steps-joint-test --seed 0 \
    --max-per-task 40 --rec-history 10
iranker data steps --tasks $C --split train --data-dir ../shared/data --out runs/steps-rec23 --seed 0 \
    --max-per-task 4000 --rec-history 10 --pool-sizes 2,3
iranker data steps --tasks $C --split test --data-dir ../shared/data --out runs/steps-rec23-test --seed 0 \
    --max-per-task 70 --rec-history 10 --pool-sizes 2,3

# 2. two runs side by side, one thread each
iranker train --config $O/training/joint.yaml   # continues results/2026-12-03-closing-label/diag-tail-all-325, lr 1e-3
iranker train --config $O/training/rec23.yaml   # fresh LoRA, all layers, lr 1e-3; stopped at 125 (at chance)
python benchmarks/train_curves.py $O/training/joint.train_log.jsonl $O/training/rec23.train_log.jsonl \
    --names joint,rec23 --out $O/training/curves

# 3. the checkpoint nearest the best evaluation (step 50; checkpoints every 20, the last 3 kept),
#    scored on the same 120 test rows (not kept: no better than its start)
python -m iranker.train.package runs/joint/checkpoint-60 results/2026-12-04-joint/joint-60
python benchmarks/score_checkpoints.py runs/steps-joint-test results/2026-12-04-joint/joint-60 --rows 120 > $O/training/score-joint-60.md

# 4. the kept router (diag-tail-all-325) on the standard routing split of the ten-task table
iranker eval --tasks router-performance,router-balance,router-cost --methods iterative --no-routing-baselines \
    --model results/2026-12-03-closing-label/diag-tail-all-325 --data-dir ../shared/data --seed 0 --limit 100 \
    --threads 1 --out $O/diag-325-routing
B=results/2026-12-01-choice-ranker
iranker compare results/2026-12-02-choice-ranker/trained-routing:iterative $O/diag-325-routing:iterative --names iranker-135m,diag-325 \
    --out $O/diag-325-routing/compare-iranker-135m
for m in cheapest-first knn random; do
  iranker compare $B/base:$m $O/diag-325-routing:iterative --names $m,diag-325 --out $O/diag-325-routing/compare-$m
done
