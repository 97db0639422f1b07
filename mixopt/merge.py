"""Weight averaging of checkpoints of one architecture (model soups; OLMo 3 merged two midtraining seeds).

A checkpoint is a transformers-style folder with ``model.safetensors`` (or sharded ``*.safetensors``)
and its config files; the merge is a folder of the same layout whose tensors are the (weighted) mean.
``add_task_vectors`` merges in memory instead, by task arithmetic on a base model's tensors (the merge proxy).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mixopt.errors import ConfigError


def _tensor_files(checkpoint: Path) -> list[Path]:
    files = sorted(checkpoint.glob("*.safetensors")) if checkpoint.is_dir() else [checkpoint]
    if not files or not all(f.is_file() and f.suffix == ".safetensors" for f in files):
        raise ConfigError(f"no safetensors weights in {checkpoint}: pass checkpoint folders saved with save_pretrained")
    return files


def merge_checkpoints(checkpoints: Sequence[str | Path], output: str | Path, weights: Sequence[float] | None = None) -> Path:
    """Average the tensors of ``checkpoints`` (uniformly, or by ``weights`` summing to 1) into ``output``."""
    paths = [Path(c) for c in checkpoints]
    if len(paths) < 2:
        raise ConfigError("merge needs at least two checkpoints")
    weights = list(weights) if weights is not None else [1.0 / len(paths)] * len(paths)
    if len(weights) != len(paths) or abs(sum(weights) - 1.0) > 1e-6:
        raise ConfigError(f"merge weights must be one per checkpoint and sum to 1 (got {weights})")
    layouts = [[f.name for f in _tensor_files(p)] for p in paths]
    if any(layout != layouts[0] for layout in layouts):
        raise ConfigError("checkpoints have different weight files: they are not of one architecture")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    for name in layouts[0]:
        handles = [safe_open(str(p / name if p.is_dir() else p), framework="pt") for p in paths]
        keys = set(handles[0].keys())
        if any(set(h.keys()) != keys for h in handles):
            raise ConfigError(f"checkpoints disagree on the tensors in {name}: they are not of one architecture")
        merged = {}
        for key in sorted(keys):
            tensors = [h.get_tensor(key) for h in handles]
            if any(t.shape != tensors[0].shape for t in tensors):
                raise ConfigError(f"tensor {key} has different shapes across checkpoints")
            if tensors[0].is_floating_point():
                total = sum(w * t.to(torch.float64) for w, t in zip(weights, tensors, strict=True))
                merged[key] = total.to(tensors[0].dtype)
            else:
                merged[key] = tensors[0]
        save_file(merged, str(output / name), metadata=handles[0].metadata() or {"format": "pt"})
    if paths[0].is_dir():
        for extra in paths[0].iterdir():
            if extra.is_file() and extra.suffix != ".safetensors":
                shutil.copy2(extra, output / extra.name)
    return output


def add_task_vectors(tensors: dict[str, torch.Tensor], experts: Sequence[tuple[str | Path, float]],
                     scale: float = 1.0) -> None:
    """Make ``tensors`` (a base model's, by name, e.g. its ``state_dict()``; changed in place) the task-arithmetic
    merge ``theta_base + scale * sum_k w_k (theta_k - theta_base)`` of ``experts`` (checkpoint folder, ``w_k``),
    computed as ``(1 - scale * sum_k w_k) theta_base + scale * sum_k w_k theta_k``: one expert's tensor is read
    at a time, never a second model in memory. Only tensors stored in the experts' files change (a tied
    weight, stored once, is changed once); integer tensors are left as they are."""
    pairs = [(Path(path), weight) for path, weight in experts]
    if not pairs:
        raise ConfigError("a task-arithmetic merge needs at least one expert checkpoint")
    keys: set[str] | None = None
    for index, (path, weight) in enumerate(pairs):
        seen: set[str] = set()
        for file in _tensor_files(path):
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    if key not in tensors:
                        raise ConfigError(f"expert {path} holds tensor {key} that the base model has not: "
                                          "experts must be trained from the base")
                    target = tensors[key]
                    if not target.is_floating_point():
                        continue
                    if index == 0:  # the base's share, once per stored tensor
                        target.mul_(1.0 - scale * sum(w for _, w in pairs))
                    tensor = handle.get_tensor(key)
                    if tensor.shape != target.shape:
                        raise ConfigError(f"tensor {key} of expert {path} has shape {tuple(tensor.shape)}, "
                                          f"the base's {tuple(target.shape)}")
                    target.add_(tensor.to(target.dtype), alpha=scale * weight)
                    seen.add(key)
        if keys is not None and seen != keys:
            raise ConfigError(f"expert {path} stores other tensors than {pairs[0][0]}: not of one architecture")
        keys = seen
