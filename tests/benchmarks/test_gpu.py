"""The GPU throughput script's arithmetic, and its CPU smoke path (tiny model, one and two processes)."""

from __future__ import annotations

import pytest

from mixopt.benchmarks import gpu


def test_peaks_are_matched_by_the_most_specific_name():
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu.peak_tflops("NVIDIA H200") == 989.0
    assert gpu.peak_tflops("NVIDIA L40S") == 362.0 and gpu.peak_tflops("NVIDIA L4") == 121.0
    assert gpu.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert gpu.peak_tflops("Some Future Accelerator") is None


def test_the_model_is_a_125m_llama_and_its_flops_follow_palm():
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(max_position_embeddings=1024, **gpu.MODEL))
    n = gpu.matmul_parameters(model)
    assert n == sum(p.numel() for p in model.parameters())  # tied: the embedding is the output head
    assert 120e6 < n < 130e6
    assert gpu.flops_per_token(n, 12, 768, 1024) == 6 * n + 12 * 12 * 768 * 1024
    untied = LlamaForCausalLM(LlamaConfig(**{**gpu.TINY, "tie_word_embeddings": False}))
    assert gpu.matmul_parameters(untied) == sum(p.numel() for p in untied.parameters()) - 512 * 64


@pytest.mark.slow
def test_the_smoke_path_trains_in_one_and_two_processes_with_ddp_and_fsdp(capsys):
    result = gpu.main(["--tiny", "--processes", "1", "2", "--strategy", "ddp", "fsdp", "--peak-tflops", "1"])
    rows = {(r["processes"], r["strategy"]): r for r in result["rows"]}
    assert set(rows) == {(1, "-"), (2, "ddp"), (2, "fsdp")}
    one = rows[1, "-"]
    for r in rows.values():
        assert r["tokens_per_second"] > 0 and r["steps"] == 8
        assert r["mfu"] == pytest.approx(r["tokens_per_second"] * result["flops_per_token"] / (r["processes"] * 1e12))
        assert r["processes"] * r["micro_batch"] * r["accumulation"] == one["micro_batch"] * one["accumulation"]
        assert r["loss_last"] == pytest.approx(one["loss_last"], abs=1e-4)  # the same global batch
    out = capsys.readouterr().out
    assert "MFU" in out and "fsdp" in out
