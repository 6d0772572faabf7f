"""Turn a trained LoRA folder into a small, self-describing model folder that can ship in a package.

    python -m iranker.train.package runs/choice/checkpoint-400 src/iranker/resources/models/iranker-135m

keeps what a ranker needs and nothing else: ``adapter_model.safetensors`` (cast to fp16: half
the size, and the adapter is applied in fp32 again when loaded onto the base),
``adapter_config.json`` (its base named by alias, so it resolves on any machine) and
``iranker.json`` (templates, ``ranking`` mode, training provenance). Optimiser state, RNG and
trainer state stay behind in the run folder. This is how the default model ``iranker-135m``
was made.

    python -m iranker.train.package --gguf iranker-135m iranker-135m.gguf

instead writes the adapter as a llama.cpp LoRA GGUF (``train.gguf_lora``), which
``python -m llama_cpp.server --model BASE.gguf --lora_path iranker-135m.gguf`` serves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from ..llm.base import BackendError
from ..llm.models import resolve_model
from ..run_info import RUN_INFO_FILE, read_run_info, set_adapter_base, write_run_info
from .gguf_lora import adapter_to_gguf, serve_command

KEEP = ("adapter_config.json", RUN_INFO_FILE)


def package_model(
    run_dir: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    dtype: str = "float16",
    note: str | None = None,
) -> Path:
    """Copy the adapter of ``run_dir`` into ``dest`` (replaced), weights cast to ``dtype``."""
    import torch
    from safetensors.torch import load_file, save_file

    src, out = Path(run_dir), Path(dest)
    info = read_run_info(src)
    if info is None or not (src / "adapter_model.safetensors").is_file():
        raise ValueError(
            f"{src} is not a trained LoRA folder (needs adapter_model.safetensors and {RUN_INFO_FILE})"
        )
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in KEEP:
        shutil.copy2(src / name, tmp / name)
    weights = load_file(str(src / "adapter_model.safetensors"))
    target = getattr(torch, dtype)
    save_file(
        {k: v.to(target).contiguous() for k, v in weights.items()},
        str(tmp / "adapter_model.safetensors"),
        metadata={"format": "pt"},
    )
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
    p.add_argument(
        "run_dir",
        help="trained folder or checkpoint (adapter + iranker.json); with --gguf also an "
        "alias such as iranker-135m",
    )
    p.add_argument("dest", help="output folder (replaced); with --gguf the .gguf file to write")
    p.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    p.add_argument("--note", default=None, help="free text recorded in iranker.json")
    p.add_argument(
        "--gguf",
        action="store_true",
        help="write a llama.cpp LoRA GGUF (for llama_cpp.server --lora_path) instead of a folder",
    )
    p.add_argument(
        "--llama-cpp-source",
        default=None,
        metavar="PATH",
        help="with --gguf: llama-cpp-python's sdist (.tar.gz), its extracted tree or a llama.cpp "
        "checkout holding convert_lora_to_gguf.py (default: $IRANKER_LLAMA_CPP_SOURCE, else "
        "the installed version's sdist, fetched once with pip)",
    )
    p.add_argument("--outtype", default="f16", choices=("f32", "f16", "bf16", "q8_0"), help="with --gguf")
    args = p.parse_args(argv)
    if args.gguf:
        return _gguf_main(args)
    try:
        out = package_model(args.run_dir, args.dest, dtype=args.dtype, note=args.note)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB): {', '.join(sorted(f.name for f in out.iterdir()))}")
    print(json.dumps(read_run_info(out).get("ranking")))
    return 0


def _gguf_main(args: argparse.Namespace) -> int:

    try:
        out = adapter_to_gguf(args.run_dir, args.dest, source=args.llama_cpp_source, outtype=args.outtype)
        resolved = resolve_model(args.run_dir)
    except (BackendError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    print(f"serve it:  {serve_command(resolved, out, Path(args.dest).stem)}")
    print(
        f"rank with: iranker rank --backend openai --model {Path(args.dest).stem} --tokenizer {args.run_dir} "
        "--base-url http://127.0.0.1:8000/v1 -i INPUT -o OUTPUT"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
