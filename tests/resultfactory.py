"""Realistic ``SubmissionResult`` objects for report and export tests (no grading needed)."""

from __future__ import annotations

import math
import random
from typing import Any

from grader.grading.mistakes import diagnose
from grader.results import Flag, Outcome, Problem, SubmissionResult, TestResult
from grader.spec import find_spec

# target, name, category, points, visibility, expected, found, hint (what a failure says)
SUITE: list[tuple[str, str, str, float, str, str | None, str | None, str | None]] = [
    ("ResidualBlock", "builds ResidualBlock(64, 128, stride=2)", "api", 1, "visible", None, None,
     "the constructor's signature differs from the skeleton's"),
    ("ResidualBlock", "output shape with stride 2", "shape", 2, "visible", "(2, 128, 16, 16)", "(2, 128, 32, 32)",
     "the first 3x3 convolution does not use the block's stride"),
    ("ResidualBlock", "parameter count (64, 64, stride=1)", "params", 2, "visible", "73,984", "78,208",
     "a 1x1 projection is built even when stride=1 and channels match"),
    ("ResidualBlock", "skip connection adds the input", "skip", 3, "hidden", "relu(x) with the residual branch zeroed",
     "zeros", "the skip connection is missing: the block returns relu(F(x)) without adding x"),
    ("ResidualBlock", "matches the reference in train mode", "structure", 3, "hidden", None, None,
     "batch normalisation is applied after the addition instead of before it"),
    ("ResidualBlock", "runs on the meta device", "device", 1, "visible", None, None,
     "a tensor is created in forward without device=: it breaks on a GPU"),
    ("DepthwiseSeparableConv", "parameter count (32, 64)", "params", 2, "visible", "2,528", "20,992",
     "the depthwise convolution has no groups=in_channels"),
    ("DepthwiseSeparableConv", "depthwise then pointwise convolution", "structure", 2, "hidden", "3x3 groups=32, then 1x1",
     "3x3 groups=1, then 1x1", "the depthwise convolution has no groups=in_channels"),
    ("MobileNetV1", "output shape (2, 10)", "shape", 1, "visible", "(2, 10)", "(2, 1024)",
     "the final Linear layer is missing"),
    ("MobileNetV1", "parameter count", "params", 2, "visible", "274,250", "1,787,114",
     "the depthwise convolutions have no groups=: +1,512,864 parameters"),
    ("MobileNetV1", "overfits one batch", "training", 3, "visible", "loss below 0.5 after 13 steps", "2.28",
     "the network ends in a softmax: CrossEntropyLoss expects logits"),
    ("ResNet", "ResNet-18 parameter count", "params", 2, "visible", "11,173,962", "11,177,802",
     "the convolutions before batch normalisation have bias=True (+3,840)"),
    ("ResNet", "each image is classified independently", "structure", 2, "hidden", None, None,
     "view(-1, 512) folds spatial positions into the batch; use flatten(1)"),
    ("ResNet", "forward on CUDA", "device", 1, "visible", None, None, None),
    ("SimplifiedInception", "branch kernel sizes and order", "structure", 2, "hidden", "receptive fields 1, 3, 5, 3",
     "1, 5, 3, 3", "the 3x3 and 5x5 branches are concatenated in the wrong order"),
    ("SimplifiedVGG", "dropout only in train mode", "training", 2, "visible", None, None,
     "F.dropout is called without training=self.training"),
    ("ModernCNN", "bonus: reaches a lower loss than ResNet-18", "bonus", 2, "visible", None, None, None),
]

TARGET_FILES = {
    "ResidualBlock": "resnet.py",
    "ResNet": "resnet.py",
    "DepthwiseSeparableConv": "mobilenet.py",
    "MobileNetV1": "mobilenet.py",
    "SimplifiedInception": "inception.py",
    "SimplifiedVGG": "vgg.py",
    "ModernCNN": "modern.py",
}

MAX_SCORE = sum(row[3] for row in SUITE)


def layer_rows(diverge_at: int | None = None) -> tuple[list[dict], list[dict]]:
    reference = [
        {"type": "Conv2d", "kernel": "3x3", "stride": "2", "groups": 1, "out_shape": "(2, 128, 16, 16)", "params": 73728},
        {"type": "BatchNorm2d", "kernel": "", "stride": "", "groups": 1, "out_shape": "(2, 128, 16, 16)", "params": 256},
        {"type": "Conv2d", "kernel": "3x3", "stride": "1", "groups": 1, "out_shape": "(2, 128, 16, 16)", "params": 147456},
        {"type": "BatchNorm2d", "kernel": "", "stride": "", "groups": 1, "out_shape": "(2, 128, 16, 16)", "params": 256},
        {"type": "Conv2d", "kernel": "1x1", "stride": "2", "groups": 1, "out_shape": "(2, 128, 16, 16)", "params": 8192},
        {"type": "BatchNorm2d", "kernel": "", "stride": "", "groups": 1, "out_shape": "(2, 128, 16, 16)", "params": 256},
    ]
    student = [dict(r) for r in reference]
    if diverge_at is not None:
        student[diverge_at] = dict(student[diverge_at], stride="1", out_shape="(2, 128, 32, 32)")
    return student, reference


def loss_curve(rng: random.Random, good: bool, steps: int = 20, nan_from: int | None = None) -> list[float | None]:
    out: list[float | None] = []
    for i in range(steps):
        if nan_from is not None and i >= nan_from:
            out.append(None if i % 2 else math.nan)
            continue
        target = 2.3026 * math.exp(-i / 5) + 0.05 if good else 2.3026 - 0.002 * i
        out.append(round(target + rng.uniform(-0.03, 0.03), 4))
    return out


def _outcome_for(rng: random.Random, p_pass: float, name: str) -> Outcome:
    if name == "forward on CUDA":
        return Outcome.skipped
    return Outcome.passed if rng.random() < p_pass else Outcome.failed


def make_result(
    student: str = "alice",
    *,
    seed: int = 0,
    p_pass: float = 0.6,
    broken_files: tuple[str, ...] = ("inception.py",),
    flags: bool = True,
    artifacts: bool = True,
    stdout: str = "",
    **overrides: Any,
) -> SubmissionResult:
    """One graded submission with every outcome, a problem, flags and all artifacts by default."""
    rng = random.Random(seed)
    tests = []
    for target, name, category, pts, visibility, expected, found, hint in SUITE:
        file = TARGET_FILES[target]
        if file in broken_files:
            outcome = Outcome.error
        else:
            outcome = _outcome_for(rng, p_pass, name)
        t = TestResult(
            name=name,
            nodeid=f"suites/day09/test_{target.lower()}.py::test_{len(tests)}",
            target=target,
            category=category,  # type: ignore[arg-type]
            score=pts if outcome is Outcome.passed else 0.0,
            max_score=pts,
            outcome=outcome,
            visibility=visibility,  # type: ignore[arg-type]
            duration_s=round(rng.uniform(0.01, 2.5), 3),
        )
        if outcome is Outcome.failed:
            t.message = f"{target} does not behave like the reference: {name} failed."
            t.expected, t.found, t.hint = expected, found, hint
        elif outcome is Outcome.error:
            t.message = f"importing {file} raised NameError: name 'nn' is not defined"
            t.data = {"error_kind": "import"}
        elif outcome is Outcome.skipped:
            t.message = "No CUDA device on the grading machine; this check runs on the GPU grader."
        tests.append(t)
    # partial credit on one test, and student output on another
    tests[1].score = tests[1].max_score / 2 if tests[1].outcome is Outcome.failed else tests[1].score
    if stdout:
        tests[0].stdout = stdout
    elif tests[2].outcome is Outcome.failed:
        tests[2].stdout = "building block...\nparams: 78208\n"

    problems = [
        Problem(
            file=f,
            kind="import",
            message=f"importing {f} raised NameError: name 'nn' is not defined",
            detail=f'Traceback (most recent call last):\n  File "{f}", line 12, in <module>\n'
            "    class SimplifiedInception(nn.Module):\nNameError: name 'nn' is not defined",
        )
        for f in broken_files
    ]
    flag_list = (
        [
            Flag(kind="timeout", detail="stopped after 60 s (limit 60 s)", test="overfits one batch"),
            Flag(kind="refused", detail="tried to open a network connection to 93.184.216.34:443"),
        ]
        if flags
        else []
    )
    arts: dict[str, Any] = {}
    if artifacts:
        student_rows, ref_rows = layer_rows(diverge_at=0 if tests[1].outcome is not Outcome.passed else None)
        arts = {
            "layer_tables": {
                "ResidualBlock": {
                    "student": student_rows,
                    "reference": ref_rows,
                    "first_divergence": 0 if tests[1].outcome is not Outcome.passed else None,
                }
            },
            "loss_curves": {
                "MobileNetV1": {
                    "student": loss_curve(rng, tests[10].outcome is Outcome.passed, nan_from=None if seed % 3 else 14),
                    "reference": loss_curve(random.Random(1), True),
                },
                "ResNet": {"student": loss_curve(rng, True, 8), "reference": loss_curve(random.Random(2), True, 8)},
            },
            "comparison": [
                {"model": "SimplifiedVGG", "params": 8952138, "ref_params": 8952138, "inference_ms": 3.91,
                 "flops": 572_400_000, "ref_flops": 572_400_000},
                {"model": "ResNet-18", "params": 11177802, "ref_params": 11173962, "inference_ms": 7.12,
                 "flops": 1_113_400_000, "ref_flops": 1_113_400_000},
                {"model": "MobileNetV1", "params": 274250, "ref_params": 274250, "inference_ms": 1.05,
                 "flops": 38_600_000, "ref_flops": 38_600_000},
                {"model": "SimplifiedInception", "params": 583410, "ref_params": 583410, "inference_ms": None,
                 "flops": None, "ref_flops": 98_000_000},
            ],
        }
    score = sum(t.score for t in tests)
    fields: dict[str, Any] = dict(
        student=student,
        assignment="day09-cnn-architectures",
        score=score,
        max_score=MAX_SCORE,
        execution_time=round(rng.uniform(20, 90), 2),
        tests=tests,
        problems=problems,
        flags=flag_list,
        isolation="bwrap: no network, 2 GiB, 120 pids",
        grader_version="0.1.0",
        key=f"{seed:064x}",
        graded_at="2026-05-04T10:15:00+00:00",
        artifacts=arts,
    )
    fields.update(overrides)
    if "mistakes" not in overrides:
        fields["tests"], fields["mistakes"] = diagnose(find_spec("day09"), fields["tests"], fields["problems"])
    return SubmissionResult(**fields)


def make_class(n: int, seed: int = 0) -> list[SubmissionResult]:
    """``n`` students with a spread of scores; every 7th has an import problem, every 5th flags."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            make_result(
                f"student-{i + 1:03d}",
                seed=seed * 100_003 + i,
                p_pass=rng.choice([0.15, 0.4, 0.6, 0.8, 0.95, 1.0]),
                broken_files=("inception.py",) if i % 7 == 3 else (),
                flags=i % 5 == 4,
            )
        )
    return out
