#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root, beside ../shared/data).
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
O=results/2026-12-03-closing-label
P=results/2026-12-03-reading/probes/inputs
R=router-heldout-performance,router-heldout-balance,router-heldout-cost

# 1. step data: aliased, re-priced 2-3-LLM pools of the held-out-LLM cost task (6 seen LLMs).
#    With this commit's templates every segment ends with its label (segment_end " {label}").
#    The no-closing-label control data (runs/diag-cost23, runs/diag-cost23-test) is the same two
#    commands run at commit 03d43bd, before segment_end existed. The diag runs' tail data was that
#    data with " [k]" appended to each candidate line by a script; the commands below render the
#    same prompts natively (checked: 200 of 200 test prompts identical).
iranker data steps --tasks router-heldout-cost --split train --data-dir ../shared/data --out runs/diag-tail \
    --seed 0 --max-per-task 3000 --routing-augment aliases,prices --pool-sizes 2,3
iranker data steps --tasks router-heldout-cost --split test --data-dir ../shared/data --out runs/diag-tail-test \
    --seed 0 --max-per-task 200 --routing-augment aliases,prices --pool-sizes 2,3
#    all three objectives, every pool size of the 6 seen LLMs, 2 augmented copies
iranker data steps --tasks $R --split train --data-dir ../shared/data --out runs/steps-tail-routing --seed 1 \
    --max-per-task 4000 --routing-augment aliases,prices --augment-copies 2
iranker data steps --tasks $R --split test --data-dir ../shared/data --out runs/steps-tail-routing-test --seed 0 \
    --max-per-task 40

# 2. training (configs in training/; one thread each, two or three runs side by side)
iranker train --config $O/training/diag-tail-all.yaml      # closing label, LoRA r16 all layers, lr 1e-3
iranker train --config $O/training/diag-tail.yaml          # closing label, LoRA on the top 10 layers, lr 2e-3
iranker train --config $O/training/diag-notail-all.yaml    # control: no closing label, all layers, lr 1e-3
iranker train --config $O/training/tail-routing.yaml       # fresh, 3 objectives, pools 2-6 (stopped at 105)
python -m iranker.train.package runs/diag-tail-all/checkpoint-325 $O/diag-tail-all-325
#   (then segment_end " {label}" written into its iranker.json templates: see the note field there)
iranker train --config $O/training/tail-curriculum.yaml    # continues diag-tail-all-325 on 3 objectives, pools 2-6
#   (not run: the runs' train logs did not survive the machine; see README)
# python benchmarks/train_curves.py $O/training/*.train_log.jsonl \
#     --names diag-notail-all,diag-tail-all,diag-tail,tail-curriculum,tail-routing --out $O/training/curves

# 3. probes (inputs of 2026-12-03-reading, plus the candidates of price-permuted in reverse order)
python - <<'PY'
import json
with open("results/2026-12-03-reading/probes/inputs/price-permuted.jsonl") as f, \
     open("results/2026-12-03-closing-label/probes/inputs/price-permuted-reversed.jsonl", "w") as g:
    for line in f:
        r = json.loads(line); r["candidates"] = r["candidates"][::-1]; r["id"] += ":reversed"
        g.write(json.dumps(r) + "\n")
PY
for f in pairs price-permuted aliased; do
  iranker eval --input $P/$f.jsonl --methods iterative --model $O/diag-tail-all-325 --no-routing-baselines \
      --seed 0 --threads 1 --out $O/probes/diag-tail-all-325-$f
done
iranker eval --input $O/probes/inputs/price-permuted-reversed.jsonl --methods iterative --model $O/diag-tail-all-325 \
    --no-routing-baselines --seed 0 --threads 1 --out $O/probes/diag-tail-all-325-price-permuted-reversed
iranker eval --input $O/probes/inputs/price-permuted-reversed.jsonl --methods random,bm25,cheapest-first \
    --no-routing-baselines --seed 0 --out $O/probes/baselines-price-permuted-reversed
python benchmarks/routing_probes.py report results/2026-12-03-reading/probes/* $O/probes/*

# 4. the held-out-LLM split (100 seeded test queries per task, all nine LLMs in every pool)
iranker eval --tasks $R --methods iterative --no-routing-baselines --model $O/diag-tail-all-325 \
    --data-dir ../shared/data --seed 0 --limit 100 --threads 1 --out $O/diag-tail-all-325-heldout
for b in cheapest-first random bm25 knn; do
  iranker compare $O/diag-tail-all-325-heldout:iterative results/2026-12-03-reading/heldout-baselines:$b \
      --names diag-tail-all-325,$b --out $O/diag-tail-all-325-heldout/compare-$b
done
iranker compare $O/diag-tail-all-325-heldout:iterative results/2026-12-03-reading/candidate-heldout:iterative \
    --names diag-tail-all-325,reading-candidate --out $O/diag-tail-all-325-heldout/compare-reading-candidate
