#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root, beside ../shared/data; one
# thread each). Two training runs shared the 2-core machine while these ran: absolute times are
# those of a loaded machine; the ratios within one run are what count.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
S=results/2026-12-04-speed
B=results/2026-12-01-choice-ranker      # the seeded baselines of the ten-task table
T=results/2026-12-02-choice-ranker      # iranker-135m's predictions on them (today's code)
TASKS=rec-movie,rec-music,rec-game,router-performance,router-balance,router-cost,passage-5,passage-7,passage-9,trec-dl19

# 0. where a step's time goes (operator table and bare-pass costs). The README's table is from
#    this script's first version, run at f6a48ae (before the leaves were left out) with its
#    output read off the terminal, not kept
python benchmarks/step_ops.py

# 1. leaves left out of the choice trie: speed and step agreement against f6a48ae's session
python benchmarks/fast_path.py --sizes 20 --per-scenario 2 --baseline f6a48ae --variants session > $S/leaves.md

# 2. batched KV steps and pruning: rankings/s and agreement, one interleaved run
python benchmarks/kv_batch.py --n 20 --examples 4 --batches 1,4 --prune quarter > $S/kv_batch.md

# 3. the ten-task table's seeded examples with the default model, the current code (leaves left
#    out); its passage part again after the segment_end fix (f25febd), into now-passage
iranker eval --tasks $TASKS --methods iterative --data-dir ../shared/data --seed 0 --limit 100 --threads 1 \
    --out $S/now
iranker eval --tasks passage-5,passage-7,passage-9,trec-dl19 --methods iterative --data-dir ../shared/data \
    --seed 0 --limit 100 --threads 1 --out $S/now-passage
for F in trained-rec trained-routing; do
  iranker compare $T/$F:iterative $S/now:iterative --names today,now --out $S/now/compare-today-$F
done
iranker compare $T/trained-other:iterative $S/now-passage:iterative --names today,now --out $S/now-passage/compare-today
#    pruning: started on all ten tasks, stopped for time after recommendation; the report of the
#    recommendation tasks is written by resuming with those tasks only (nothing recomputed)
iranker eval --tasks $TASKS --methods iterative --prune quarter --data-dir ../shared/data --seed 0 --limit 100 \
    --threads 1 --out $S/prune-quarter   # stopped in router-performance; its partial routing rows removed
iranker eval --tasks rec-movie,rec-music,rec-game --methods iterative --prune quarter --data-dir ../shared/data \
    --seed 0 --limit 100 --threads 1 --out $S/prune-quarter
iranker compare $S/now:iterative $S/prune-quarter:iterative --names no-pruning,prune-quarter --out $S/prune-quarter/compare-now
#    pruning on the routing tasks, where the default ranks (two processes, after the others)
iranker eval --tasks router-performance,router-balance --methods iterative --no-routing-baselines --prune quarter \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $S/prune-quarter-routing-a
iranker eval --tasks router-cost --methods iterative --no-routing-baselines --prune quarter \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $S/prune-quarter-routing-b
for X in a b; do
  iranker compare $S/now:iterative $S/prune-quarter-routing-$X:iterative --names no-pruning,prune-quarter \
      --out $S/prune-quarter-routing-$X/compare-now
done
