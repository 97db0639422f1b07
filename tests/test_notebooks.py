"""The inspection notebooks run top to bottom on a small study (their fast mode), and ship without outputs."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mixopt import report
from test_report import make_study

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["pareto_inspection.ipynb", "surrogate_diagnostics.ipynb"]


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.fixture(scope="module")
def study_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebook-study")
    study = make_study(folder, n_search=report.MIN_SURROGATE_TRIALS + 2)
    return {"MIXOPT_NOTEBOOK_STORAGE": f"sqlite:///{folder / 'study.db'}", "MIXOPT_NOTEBOOK_STUDY": study.name}


def executed_text(name: str) -> str:
    """Run a notebook in a fresh kernel from the notebooks folder; the text of its stream outputs."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert figures, "the notebook showed no figure"
    return "".join(o.text for o in outputs if o.output_type == "stream")


@pytest.mark.slow
def test_pareto_inspection_picks_and_exports_a_mixture(study_env, monkeypatch):
    for key, value in study_env.items():
        monkeypatch.setenv(key, value)
    text = executed_text("pareto_inspection.ipynb")
    assert "study synthetic: 10 completed trials" in text
    assert "knee: trial" in text and "chebyshev:1,1,1: trial" in text and "no regression > 0.05" in text
    assert "hypervolume:" in text
    assert "target_ratio:" in text and "# rule: knee" in text


@pytest.mark.slow
def test_surrogate_diagnostics_cross_validates_and_exports_the_predicted_knee(study_env, monkeypatch):
    for key, value in study_env.items():
        monkeypatch.setenv(key, value)
    text = executed_text("surrogate_diagnostics.ipynb")
    assert "microanneal: Spearman math" in text
    assert "integration: 0 trials, too few" in text
    assert "predicted knee: math=" in text
    assert "# source: surrogate knee, not yet run" in text
