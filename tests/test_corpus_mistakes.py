"""Over the whole corpus: a submission with one mistake gets one entry in "What to fix", in its own class."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _single_mistake_cases(report):
    return [r for r in report.results
            if r.case.kind == "wrong" and len(r.case.targets) == 1 and not r.unavailable and r.error is None]


# Single-mistake cases that do not yet yield one mistake in their own class, computed from the corpus results
# graded on 2026-12-01 (tests/fixtures/corpus-results.json): their networks' tests still fail without naming the
# block's cause, or a class's checks fail with several texts the suites do not name as one cause.
NOT_YET_ONE_MISTAKE = [case.strip() for case in """
    inception_dropout_always_on, mobilenet_paper_13_blocks, mobilenet_softmax_output,
    mobilenet_stride_shifted, modern_downsample_late, modern_dropout_always, modern_softmax,
    noskip_with_skip, res_add_before_bn2, res_batchnorm1d, res_bias_before_bn, res_bn1_reused,
    res_bn_after_relu, res_bn_no_running_stats, res_conv1_twice, res_cpu_tensor_in_forward,
    res_inplace_add_into_input, res_inplace_relu_on_input, res_instance_norm,
    res_instance_norm_affine, res_no_final_relu, res_no_skip, res_plain_tensor_attribute,
    res_projection_3x3, res_projection_always, res_projection_never, res_projection_no_bn,
    res_relu6, res_relu_before_add, res_relu_before_add_no_final, res_skip_twice,
    res_stride_on_conv2, resnet18_blocks, resnet_block_too_few, resnet_block_too_many,
    resnet_imagenet_stem, resnet_softmax, resnet_wrong_stage_strides, vgg_avg_pool, vgg_batchnorm,
    vgg_dropout_always, vgg_in_channels_not_updated, vgg_linear_512, vgg_no_bias,
    vgg_no_relu_last_conv, vgg_padding0, vgg_pool_every_conv, vgg_python_list, vgg_relu6,
    vgg_softmax, vgg_view_minus1, withskip_relu_after_add, withskip_without_skip
""".split(",")]


@pytest.mark.xfail(strict=False, reason=f"{len(NOT_YET_ONE_MISTAKE)} single-mistake cases still give more than "
                   "one entry: " + ", ".join(NOT_YET_ONE_MISTAKE))
def test_every_single_mistake_case_yields_one_mistake_in_its_own_class(graded_corpus):
    cases = _single_mistake_cases(graded_corpus)
    assert cases
    wrong = {}
    for r in cases:
        found = [(m.target, m.key) for m in r.mistakes]
        if [target for target, _ in found] != list(r.case.targets):
            wrong[r.case.name] = found
    assert not wrong, f"{len(wrong)} of {len(cases)} single-mistake cases: " + "; ".join(
        f"{name} -> {found}" for name, found in sorted(wrong.items()))
