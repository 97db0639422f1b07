"""The demo tokenizer."""

from __future__ import annotations

from mixopt.demo.base import EOS, PAD, train_tokenizer


def test_byte_level_tokenizer_round_trips_any_text(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = train_tokenizer(["def f(x):\n    return x + 1\n", "The king said hello. " * 50], vocab_size=300)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "Unseen text: Ωμέγα, emoji 🙂, tabs\tand 12345."
    ids = loaded(text, add_special_tokens=False)["input_ids"]
    assert loaded.decode(ids) == text
    assert loaded.eos_token == EOS and loaded.pad_token == PAD and loaded.eos_token_id != loaded.pad_token_id
    assert len(loaded) <= 300
