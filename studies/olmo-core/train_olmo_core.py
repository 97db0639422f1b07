"""An OLMo-core launcher for mixopt's command runner: one trial trained by OLMo-core's own trainer.

    python train_olmo_core.py MIXTURE SPEC METRICS [--model olmo2_1M] [--lr 1e-3] [--eval-instances 8]
                              [--eos-token-id ID] [--sequence-length N] [--global-batch-size TOKENS]

MIXTURE is the trial's olmo-core export (a whole ``SourceMixtureDatasetConfig``; its header names the token
dtype and sequence length; the command runner writes OLMo-core's defaults, 4096 and 4,194,304 tokens, so
give your trainer's with ``--sequence-length`` and ``--global-batch-size``), SPEC its ``run_spec.json``.
The program builds OLMo-core's dataset from the mixture at the trial's token budget and seed
(``NumpyFSLDatasetConfig.from_src_mix``; documents end with ``--eos-token-id``), a model from the
``TransformerConfig`` constructor ``--model`` names, initialised from scratch (the spec's ``model``, a
checkpoint to continue from, is not loaded: this launcher shows the handoff, not a microanneal from a base
model), and trains one pass over the dataset with OLMo-core's ``Trainer`` (AdamW, learning rate annealed
linearly to 0), on CUDA where it is visible, else on CPU with gloo. METRICS gets ``train_loss`` (the last
step's cross-entropy) and ``<source>_loss`` per source: the trained model's mean cross-entropy on the
first ``--eval-instances`` sequences of that source's first file. Those tokens are in the training data, so
the losses measure fit, not generalisation; a real study scores held-out data or tasks. Alone the program
is one process (several under torchrun: not tried here).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import sys
from pathlib import Path

import numpy as np
import yaml

BUILD_CALL = re.compile(r"\.build\(npdtype=numpy\.(\w+), sequence_length=(\d+)\)")


def fail(message: str) -> None:
    print(f"train_olmo_core: {message}", file=sys.stderr)
    raise SystemExit(2)


def single_process_env() -> None:
    """Outside torchrun: a process group of one, on a free local port."""
    if "RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mixture")
    parser.add_argument("spec")
    parser.add_argument("metrics")
    parser.add_argument("--model", default="olmo2_1M", help="the TransformerConfig constructor to build the model with")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-instances", type=int, default=8)
    parser.add_argument("--eos-token-id", type=int, default=0,
                        help="the id that ends each document in the token files (OLMo-core splits documents on it)")
    parser.add_argument("--sequence-length", type=int, help="tokens per instance (default: the mixture file's)")
    parser.add_argument("--global-batch-size", type=int, help="tokens per step (default: the mixture file's)")
    args = parser.parse_args(argv)

    text = Path(args.mixture).read_text()
    call = BUILD_CALL.search(text)
    if call is None:
        fail(f"{args.mixture} is not an olmo-core export naming its build call: set the command runner's "
             "format: olmo-core and the sources' token_dtype")
    dtype, sequence_length = getattr(np, call[1]), args.sequence_length or int(call[2])
    spec = json.loads(Path(args.spec).read_text())
    data = yaml.safe_load(text)
    data["requested_tokens"] = int(spec["tokens"])
    data["seed"] = int(spec["seed"])
    global_batch = args.global_batch_size or int(data["global_batch_size"])
    if global_batch % sequence_length:
        fail(f"the global batch ({global_batch} tokens) is no multiple of the sequence length ({sequence_length}): "
             "give --global-batch-size a multiple of it")
    data["global_batch_size"] = global_batch

    import torch
    from olmo_core.data import NumpyDataLoaderConfig, NumpyFSLDatasetConfig, TokenizerConfig
    from olmo_core.data.source_mixture import SourceMixtureDatasetConfig
    from olmo_core.exceptions import OLMoConfigurationError
    from olmo_core.nn.transformer import TransformerConfig
    from olmo_core.optim import AdamWConfig, LinearWithWarmup
    from olmo_core.train import Duration, TrainerConfig, prepare_training_environment, teardown_training_environment
    from olmo_core.train.callbacks import Callback
    from olmo_core.train.train_module import TransformerTrainModuleConfig

    model_name = args.model
    if not hasattr(TransformerConfig, model_name):
        fail(f"model {model_name!r} is no TransformerConfig constructor in OLMo-core: name one such as olmo2_1M")
    # Token ids index the embedding: the vocabulary covers the largest id in the files, rounded up to 128.
    paths = [p for s in data["source_list"]["sources"] for p in s["paths"]]
    top = max(int(np.fromfile(p, dtype=dtype).max()) for p in paths)
    vocab = 128 * math.ceil((max(top, args.eos_token_id) + 2) / 128)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    single_process_env()
    prepare_training_environment(seed=int(spec["seed"]), backend="cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
    out = Path(spec["output_dir"])
    work = out / "olmo-core"
    try:
        mixture = SourceMixtureDatasetConfig.from_dict(data)
        mixture.render_tables, mixture.quiet = False, True
        tokenizer = TokenizerConfig(vocab_size=vocab, eos_token_id=args.eos_token_id, pad_token_id=vocab - 1)
        dataset = NumpyFSLDatasetConfig.from_src_mix(mixture, tokenizer=tokenizer, sequence_length=sequence_length,
                                                     work_dir=str(work)).build()
    except OLMoConfigurationError as exc:
        fail(f"OLMo-core refuses this mixture: {exc}")
    model = getattr(TransformerConfig, model_name)(vocab_size=vocab).build(init_device=device.type)
    train_module = TransformerTrainModuleConfig(
        rank_microbatch_size=global_batch, max_sequence_length=sequence_length, optim=AdamWConfig(lr=args.lr),
        scheduler=LinearWithWarmup(warmup=0, alpha_f=0.0)).build(model, device=device)
    loader = NumpyDataLoaderConfig(global_batch_size=global_batch, seed=int(spec["seed"]), work_dir=str(work)).build(dataset)

    losses: list[float] = []

    class RecordLoss(Callback):
        def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
            if "train/CE loss" in metrics:
                losses.append(float(metrics["train/CE loss"]))

    trainer = TrainerConfig(save_folder=str(work / "save"), work_dir=str(work), device=device.type, no_checkpoints=True,
                            max_duration=Duration.epochs(1), metrics_collect_interval=1,
                            callbacks={"record_loss": RecordLoss()}).build(train_module, loader)
    trainer.fit()

    metrics = {"train_loss": losses[-1] if losses else float("nan")}
    model.eval()
    with torch.no_grad():
        for source in data["source_list"]["sources"]:
            tokens = np.fromfile(source["paths"][0], dtype=dtype)
            n = min(args.eval_instances, len(tokens) // (sequence_length + 1))
            batch = torch.from_numpy(tokens[: n * (sequence_length + 1)].astype(np.int64)).view(n, -1).to(device)
            logits = model(batch[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1))
            metrics[f"{source['source_name']}_loss"] = float(loss)
    Path(args.metrics).write_text(json.dumps({"metrics": metrics}))
    print("metrics:", metrics)
    teardown_training_environment()


if __name__ == "__main__":
    main()
