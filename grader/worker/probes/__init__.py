"""Probes: measurements of a module that both sides run with the same code.

The trusted side runs a probe on the reference in its own process; the worker
runs the same probe on the student's module in the sandbox and sends the result
back as plain data. Comparing the two is the suite's job, not the probe's.

A probe is ``fn(build, **params) -> dict`` where ``build()`` returns a fresh
module (or, for function targets, the function itself). Results hold only
numbers, strings, lists, dicts and numpy arrays. Every probe registers itself
in ``PROBES`` by name when its module is imported; importing this package
imports them all. Grouped by what they measure:

- ``structure``: what a module is built from (parameters, layers in order, receptive fields);
- ``behaviour``: what its forward does with an input (shapes, values, gradients, dropout);
- ``training``: training and evaluation loops, watched through ``recording``;
- ``visualisation``: filters, feature maps and saved images;
- ``cost``: FLOPs, inference time, a model built on the meta device;
- ``gpu``: a module moved to CUDA and trained there.

``core`` holds the table, the ``@probe`` decorator and the helpers every group uses.
"""

from __future__ import annotations

# Importing a group registers its probes in PROBES; their names stay reachable from here too.
from .core import (PROBES, ProbeFailure, as_module, call, count_by_type, family, has_lazy_layers, kaiming_init,
                   keyed_fill, keyed_values, make_input, materialise, materialising, output_tensor, plain, probe,
                   set_dropout, to_numpy)
from .structure import anatomy, construct, describe, execution_trace, param_count, receptive_fields, shared_modules
from .behaviour import (batch_independence, call_function, dropout_profile, forward_shape, gradient_flow,
                        input_mutation, keyed_forward, keyed_forward_after_updates, logits_check, meta_forward,
                        residual_zeroed, skip_zeroed, stack_gradient, stochasticity)
from . import recording
from .training import compare_protocol, device_choice, evaluate_protocol, overfit, training_protocol
from .gpu import cuda_forward, cuda_move, device_overfit
from .visualisation import feature_maps_probe, filter_grid_probe, first_conv_probe, save_image_probe
from .cost import flops, inference_time, meta_cost
