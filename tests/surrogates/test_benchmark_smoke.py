"""The surrogate benchmark's fast mode runs end to end on the real RegMix table."""

import pytest

from mixopt.benchmarks.surrogates import main


@pytest.mark.slow
def test_fast_mode_fits_regmix_128_and_beats_the_published_lightgbm(capsys):
    result = main(["--fast", "--json"])
    assert result["olmix_cv_spearman"] == {}
    assert result["regmix_spearman"]["fit on first 128"] >= 0.985
    assert '"fit on first 128"' in capsys.readouterr().out
