"""Write a seeded subset of one task split as `iranker rank` / `iranker eval --input` JSONL.

    python export_examples.py TASK SPLIT N OUT.jsonl DATA_DIR
"""
import sys

from iranker.data.io import write_examples
from iranker.data.tasks import build_task

task, split, limit, out, data_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
td = build_task(task, data_dir, split=split, seed=0, limit=limit)
print(f"{write_examples(out, td.examples)} {split} examples of {task} -> {out}", file=sys.stderr)
