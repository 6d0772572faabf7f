#!/usr/bin/env bash
# The exact commands behind this folder (run from the project root; one thread each).
# The machine was shared: two training runs and other jobs kept the load average at 8-12 on
# 2 cores, so absolute times are 10-20x those of an idle machine; every table compares its
# rows within one run (interleaved), and the ratios are what count.
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
R=results/2026-12-03-speed

# 1. where a step's time goes, today (the session code and PEFT layers of 6478316, exported
#    with `git archive 6478316 src | tar -x -C /tmp/base`) and after this change
#    (the --ops operator table was requested for today's run but did not finish under this load:
#    the committed file has the phase table only; profile_now.md ran at 91df2b3's tree with
#    refresh_in_step=True, its default while it ran)
PYTHONPATH=/tmp/base/src python benchmarks/step_profile.py --ops > $R/profile_today.md
python benchmarks/step_profile.py > $R/profile_now.md

# 2. agreement with today's rankings and speed of every change, one interleaved run
#    (run while refresh_in_step defaulted to True: its "session" row is today's
#    "session + refresh in the step", its "session, refresh in a pass of its own" row is today's
#    default; base-dtype and merged ran with refresh_in_step=True)
python benchmarks/fast_path.py --sizes 20 --per-scenario 1 --variants eager,session,base-dtype,merged > $R/fast_path.md

# 3. threads beside another busy process (started, stopped unfinished: the machine was saturated)
# python benchmarks/threads.py > $R/threads.md
