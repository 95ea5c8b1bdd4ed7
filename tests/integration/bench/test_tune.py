"""``tritonkit tune`` on a private embedded Triton: sweep, choose within the budget, publish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tritonkit.bench import SearchSpace, TuneError, TuneOptions, tune
from tritonkit.cli import app
from tritonkit.repository import parse_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPACE = SearchSpace(
    classifier_instances=(1, 2),
    intra_op_threads=(1,),
    preprocess_instances=(1,),
    preferred_batch_sizes=((4,),),
    max_queue_delay_us=(50_000,),
)


@pytest.fixture
def repo(pipeline_repo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model_repository"
    shutil.copytree(pipeline_repo, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_tune_measures_the_candidates_and_publishes_the_winner_as_a_new_version(
    repo: Path, photos: Path
) -> None:
    seen: list[str] = []
    result = tune(
        TuneOptions(
            model="tiny",
            repository=repo,
            space=SPACE,
            concurrency=(4,),
            duration_s=1.0,
            warmup_s=0.3,
            images=(photos,),
            confirm=False,
        ),
        lambda text, _measured: seen.append(text),
    )

    assert result.from_version == 1 and result.published_version == 2
    layouts = [(r.candidate.classifier_instances, r.candidate.intra_op_threads) for r in result.results]
    assert layouts == [(1, 2), (1, 1), (2, 1)]  # the built config first, then the space's layouts
    assert result.baseline == result.results[0].candidate
    assert all(r.feasible and r.score > 0 for r in result.results)
    assert result.winner.score == max(r.score for r in result.results)
    assert any("EXPLICIT" in text for text in seen)

    winner = result.winner.candidate
    classifier = parse_config((repo / "tiny_classifier" / "config.pbtxt").read_text())
    assert classifier.instance_group[0].count == winner.classifier_instances
    assert classifier.dynamic_batching.max_queue_delay_microseconds == winner.max_queue_delay_us
    assert classifier.parameters["intra_op_threads"].string_value == str(winner.intra_op_threads)
    assert classifier.parameters["parallel_runs"].string_value == str(winner.parallel_runs)
    for name in ("tiny", "tiny_preprocess", "tiny_classifier"):
        manifest = json.loads((repo / name / "2" / "tritonkit.json").read_text())
        assert manifest["version"] == 2 and manifest["derived_from"]["version"] == 1
        assert manifest["tune"]["winner"]["classifier_instances"] == winner.classifier_instances
        assert len(manifest["tune"]["candidates"]) == 3
        assert manifest["tune"]["baseline"]["intra_op_threads"] == 2
    assert (repo / "tiny_classifier" / "1" / "model.onnx").exists()  # the old version stays
    assert (repo / "tiny_classifier" / "2" / "model.onnx").exists()


def test_the_time_budget_stops_the_search_after_the_baseline_and_says_so(repo: Path, photos: Path) -> None:
    seen: list[str] = []
    result = tune(
        TuneOptions(
            model="tiny",
            repository=repo,
            space=SPACE,
            concurrency=(2,),
            duration_s=0.5,
            warmup_s=0,
            images=(photos,),
            budget_s=0.5,  # less than starting the server takes: only the baseline is measured
        ),
        lambda text, _measured: seen.append(text),
    )
    assert [r.candidate for r in result.results] == [result.baseline]
    assert result.skipped == 2 and result.published_version == 2
    assert any("time budget of 0.5 s reached: 2 candidate(s) not measured" in text for text in seen)
    manifest = json.loads((repo / "tiny" / "2" / "tritonkit.json").read_text())
    assert manifest["tune"]["skipped_for_time"] == 2


def test_an_unmeetable_budget_publishes_nothing_and_the_cli_says_why(repo: Path, photos: Path) -> None:
    # a space of one point, the built config: a single measurement
    outcome = CliRunner().invoke(
        app,
        [
            "tune",
            "--model",
            "tiny",
            "--repo",
            str(repo),
            "--max-p99-ms",
            "0.001",
            "--concurrency",
            "2",
            "--duration",
            "0.5",
            "--warmup",
            "0",
            "--images",
            str(photos),
            "--classifier-instances",
            "1",
            "--intra-op-threads",
            "2",
            "--preprocess-instances",
            "1",
            "--preferred-batch-sizes",
            "4",
            "--max-queue-delay-us",
            "50000",
            "--no-confirm",
        ],
    )
    assert outcome.exit_code == 1, outcome.output
    assert "no candidate met p99 <= 0.001 ms" in outcome.output
    assert not (repo / "tiny" / "2").exists()


def test_tune_refuses_what_is_not_a_tritonkit_pipeline(repo: Path) -> None:
    with pytest.raises(TuneError, match="not a tritonkit pipeline"):
        tune(TuneOptions(model="tiny_classifier", repository=repo))
