#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root, beside ../shared/data).
# Same seeded test examples as results/2026-12-02-choice-ranker (seed 0, limit 100 per
# recommendation/routing task, every passage-5/7/9 and trec-dl19 query); no training.
# One folder per scenario group: three processes side by side, each with one thread.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false IRANKER_THREADS=1 OMP_NUM_THREADS=1
R=results/2026-12-03-signals
D=../shared/data
SIG=bm25,dense,cooccur,outcomes   # each provider applies to its scenarios only (cooccur: rec, outcomes: routing)

# 1. signals on every test example (cooccur / outcomes from each task's TRAINING split), each
#    single signal as a ranker (bm25 here; dense = the dense row of the baseline folder) and RRF (k = 60)
nice -n 10 iranker eval --tasks rec-movie,rec-music,rec-game --methods random,bm25,cooccur,rrf \
    --signals $SIG --data-dir $D --seed 0 --limit 100 --out $R/signals-rec
nice -n 10 iranker eval --tasks passage-5,passage-7,passage-9,trec-dl19 --methods random,bm25,rrf \
    --signals $SIG --data-dir $D --seed 0 --limit 100 --out $R/signals-passage
nice -n 10 iranker eval --tasks rec-movie,rec-music,rec-game,router-performance,router-balance,router-cost,passage-5,passage-7,passage-9,trec-dl19 \
    --methods random,bm25,cooccur,outcomes,rrf --signals $SIG --data-dir $D --seed 0 --limit 100 --out $R/signals

# 2. paired comparisons (same examples) against results/2026-12-01-choice-ranker/base (random, bm25,
#    dense, knn, iterative-choice = the untrained base LLM zero-shot without signals); F = folder
B=results/2026-12-01-choice-ranker/base
cmp() { nice -n 10 iranker compare "$1" "$2" --names "$3" --out "$4"; }
cmp $B:knn   $R/signals-rec:rrf     knn,rrf     $R/compare/signals-rec-rrf-vs-knn
cmp $B:dense $R/signals-rec:rrf     dense,rrf   $R/compare/signals-rec-rrf-vs-dense
cmp $R/signals-rec:bm25 $R/signals-rec:rrf bm25,rrf $R/compare/signals-rec-rrf-vs-bm25
cmp $B:knn   $R/signals-rec:cooccur knn,cooccur $R/compare/signals-rec-cooccur-vs-knn
cmp $B:iterative-choice $R/signals-rec:rrf iterative-choice,rrf $R/compare/signals-rec-rrf-vs-iterative-choice
cmp $B:dense $R/signals-passage:rrf dense,rrf   $R/compare/signals-passage-rrf-vs-dense
cmp $R/signals-passage:bm25 $R/signals-passage:rrf bm25,rrf $R/compare/signals-passage-rrf-vs-bm25
cmp $B:iterative-choice $R/signals-passage:rrf iterative-choice,rrf $R/compare/signals-passage-rrf-vs-iterative-choice
cmp $B:knn   $R/signals:outcomes    knn,outcomes $R/compare/signals-outcomes-vs-knn
cmp $B:knn   $R/signals:rrf         knn,rrf     $R/compare/signals-rrf-vs-knn
cmp $R/signals:cheapest-first $R/signals:rrf cheapest-first,rrf $R/compare/signals-rrf-vs-cheapest-first
python $R/table.py $R $B > $R/table.md
