"""Turn a trained LoRA folder into a small, self-describing model folder that can ship in a package.

    python -m iranker.train.package runs/choice/checkpoint-400 src/iranker/resources/models/iranker-135m

keeps what a ranker needs and nothing else: ``adapter_model.safetensors`` (cast to fp16: half
the size, and the adapter is applied in fp32 again when loaded onto the base),
``adapter_config.json`` (its base named by alias, so it resolves on any machine) and
``iranker.json`` (templates, ``ranking`` mode, training provenance). Optimiser state, RNG and
trainer state stay behind in the run folder. This is how the default model ``iranker-135m``
was made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from ..run_info import RUN_INFO_FILE, read_run_info, set_adapter_base, write_run_info

KEEP = ("adapter_config.json", RUN_INFO_FILE)


def package_model(run_dir: str | os.PathLike[str], dest: str | os.PathLike[str], *, dtype: str = "float16",
                  note: str | None = None) -> Path:
    """Copy the adapter of ``run_dir`` into ``dest`` (replaced), weights cast to ``dtype``."""
    import torch
    from safetensors.torch import load_file, save_file

    src, out = Path(run_dir), Path(dest)
    info = read_run_info(src)
    if info is None or not (src / "adapter_model.safetensors").is_file():
        raise ValueError(f"{src} is not a trained LoRA folder (needs adapter_model.safetensors and {RUN_INFO_FILE})")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in KEEP:
        shutil.copy2(src / name, tmp / name)
    weights = load_file(str(src / "adapter_model.safetensors"))
    target = getattr(torch, dtype)
    save_file({k: v.to(target).contiguous() for k, v in weights.items()}, str(tmp / "adapter_model.safetensors"),
              metadata={"format": "pt"})
    for f in tmp.iterdir():
        os.chmod(f, 0o644)  # shipped files: readable by everyone (save_file writes 0600)
    set_adapter_base(tmp, str(info.get("base_model") or "smollm2-135m"))
    info = dict(info)
    info["packaged"] = {"from": str(src), "weights_dtype": dtype, **({"note": note} if note else {})}
    info.get("dataset", {}).pop("path", None)  # a path on the training machine means nothing elsewhere
    info.pop("base_model_loaded_from", None)
    write_run_info(tmp, info)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iranker.train.package", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="trained folder or checkpoint (adapter + iranker.json)")
    p.add_argument("dest", help="output folder (replaced)")
    p.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    p.add_argument("--note", default=None, help="free text recorded in iranker.json")
    args = p.parse_args(argv)
    try:
        out = package_model(args.run_dir, args.dest, dtype=args.dtype, note=args.note)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB): {', '.join(sorted(f.name for f in out.iterdir()))}")
    print(json.dumps(read_run_info(out).get("ranking")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
