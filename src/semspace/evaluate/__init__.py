"""Evaluation: STS runners, tables and plots."""

from semspace.evaluate.report import write_sts_report
from semspace.evaluate.runner import PRESETS, STSRun, run_sts
from semspace.evaluate.sts import evaluate_task, score_test

__all__ = ["PRESETS", "STSRun", "evaluate_task", "run_sts", "score_test", "write_sts_report"]
