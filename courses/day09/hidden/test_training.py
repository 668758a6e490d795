"""The training practice task: get_device, train_one_epoch, evaluate, train_and_compare."""

from __future__ import annotations

import math

import checks_b as cb
from grader.testing import Mistake, check, grade


def _log(result: dict) -> str:
    return "; ".join(result["events"][:24]) or "no calls"


# --------------------------------------------------------------------------- get_device

@grade("get_device", "device")
def test_get_device(student):
    """get_device returns torch.device("cuda") when a GPU is available and torch.device("cpu") otherwise"""
    got = cb.run(student.function("get_device"), "device_choice")
    want = "cuda" if got["cuda_available"] else "cpu"
    check(got["is_device"], "get_device() must return a torch.device", expected=f"torch.device('{want}')",
          found=f"{got['type']} {got['text']!r}", hint="Return a torch.device object (not a string): the GPU when CUDA is available, else the CPU.")
    check(got["device_type"] == want, f"get_device() returned the wrong device ({'a GPU is' if got['cuda_available'] else 'no GPU is'} available here)",
          expected=want, found=got["text"], hint="Ask torch.cuda.is_available() and pick the device from it.")


# --------------------------------------------------------------------------- train_one_epoch

def _train_probe(student) -> dict:
    return cb.run(student.function("train_one_epoch"), "training_protocol")


@grade("train_one_epoch", "training")
def test_train_one_epoch_updates(student):
    """train_one_epoch puts the model in training mode and updates it exactly like one correct epoch"""
    r = _train_probe(student)
    check(r["forwards"] == r["batches"], f"The model ran {r['forwards']} forward passes for {r['batches']} batches",
          expected=f"one forward per batch ({r['batches']})", found=str(r["forwards"]),
          hint="Loop once over the loader and call model(inputs) once per batch.")
    check(all(m == "train" for m in r["forward_modes"]),
          "The model was still in evaluation mode while training (it started in eval mode, as after evaluate())",
          expected="model.train() before the loop", found=f"forward modes: {', '.join(r['forward_modes'])}",
          hint="Call model.train() at the start of train_one_epoch: dropout and BatchNorm behave differently in eval mode.",
          cause="train_one_epoch.no_train_mode")
    check(all(r["grad_on"]), "A training forward ran with gradients switched off",
          expected="gradients enabled", found="torch.no_grad() or inference_mode around the training step")
    check(r["backward_calls"] == r["batches"], f"loss.backward() ran {r['backward_calls']} times for {r['batches']} batches",
          expected=str(r["batches"]), found=str(r["backward_calls"]), hint="Call loss.backward() once per batch.")
    check(r["step_calls"] == r["batches"], f"optimizer.step() ran {r['step_calls']} times for {r['batches']} batches",
          expected=str(r["batches"]), found=str(r["step_calls"]), hint="Call optimizer.step() once per batch, after backward().")
    if r["param_diff"] > 1e-5:
        hint, cause = ("Compare the calls above with one training step per batch: clear the gradients, forward, "
                       "loss, backward, optimizer step."), None
        if r["zero_grad_calls"] == 0:
            hint = ("Gradients are never cleared, so every step also applies the gradients of all earlier batches: "
                    "call optimizer.zero_grad() once per batch, before loss.backward().")
            cause = "train_one_epoch.no_zero_grad"
        elif r["zero_grad_calls"] < r["batches"]:
            hint, cause = "optimizer.zero_grad() must run for every batch, not once per epoch.", "train_one_epoch.no_zero_grad"
        raise Mistake("After one epoch the weights differ from one correct epoch on the same data",
                      expected="the same weights as the correct protocol",
                      found=f"largest weight difference {r['param_diff']:.3g}; calls: {_log(r)}", hint=hint, cause=cause)


@grade("train_one_epoch", "training")
def test_train_one_epoch_device(student):
    """train_one_epoch moves every batch's inputs and labels to the device"""
    r = _train_probe(student)
    check(all(r["inputs_moved"]), "The inputs reach the model without being moved to the device",
          expected="inputs.to(device) for every batch", found=_log(r),
          hint="Each batch's inputs and labels come from the loader on the CPU: move both to the device at the top "
               "of the loop body.", cause="train_one_epoch.inputs_off_device")
    moved = [e for e in r["events"] if e.startswith("labels.to(")]
    check(all(r["labels_moved"]) if r["labels_moved"] else bool(moved), "The labels are left on the CPU",
          expected="labels.to(device) for every batch", found=_log(r),
          hint="Move the labels too: on a GPU the loss fails when the logits are on cuda and the labels on the CPU.",
          cause="train_one_epoch.labels_off_device")


@grade("train_one_epoch", "training")
def test_train_one_epoch_returns_mean_loss(student):
    """train_one_epoch returns the mean batch loss as a Python float (accumulated with loss.item())"""
    r = _train_probe(student)
    ret = r["returned"]
    if ret["type"] == "tensor":
        raise Mistake("train_one_epoch returned a tensor; the losses were accumulated as tensors",
                      expected="a Python float", found=f"a tensor{' that still holds its autograd graph' if ret.get('requires_grad') else ''}",
                      hint="Accumulate loss.item(): adding the loss tensor keeps every batch's graph alive (memory grows "
                           "with each batch) and returns a tensor instead of a number.",
                      cause="train_one_epoch.loss_tensor_accumulated")
    check(not r["kept_graph"], "The loss tensors of earlier batches (with their autograd graphs) are kept alive during the epoch",
          expected="only numbers kept from earlier batches", found="loss tensors accumulated or stored",
          hint="Accumulate loss.item() (a float), not loss: a running sum of loss tensors keeps every batch's graph in memory.",
          cause="train_one_epoch.loss_tensor_accumulated")
    value = cb.number(ret)
    check(value is not None and ret["type"] in ("float", "int", "numpy"), "train_one_epoch must return a number",
          expected="a float", found=ret["type"])
    # the mean of the losses this run computed (the criterion records them), so a wrong update is not counted twice
    seen = r["observed_losses"] if len(r["observed_losses"]) == r["batches"] else r["batch_losses"]
    want = sum(seen) / len(seen)
    check(math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-6), "The returned value is not the mean of the batch losses",
          expected=f"{want:.6f} (mean of {', '.join(f'{v:.4f}' for v in seen)})", found=f"{value:.6f}",
          hint="Sum loss.item() over the batches and divide by the number of batches.")


# --------------------------------------------------------------------------- evaluate

def _eval_probe(student) -> dict:
    return cb.run(student.function("evaluate"), "evaluate_protocol")


@grade("evaluate", "training")
def test_evaluate_values(student):
    """evaluate returns (mean loss, accuracy as a fraction in [0, 1])"""
    r = _eval_probe(student)
    ret = r["returned"]
    check(ret["type"] in ("tuple", "list") and len(ret.get("items", [])) == 2, "evaluate must return (mean_loss, accuracy)",
          expected="a tuple of two numbers", found=ret["type"])
    loss_d, acc_d = ret["items"]
    for name, d in (("mean_loss", loss_d), ("accuracy", acc_d)):
        check(cb.number(d) is not None and not d.get("requires_grad"), f"{name} is not a plain number",
              expected="a Python float", found=d["type"] + (" holding an autograd graph" if d.get("requires_grad") else ""),
              hint="Convert with .item() and run the evaluation under torch.no_grad().")
    loss, acc = cb.number(loss_d), cb.number(acc_d)
    want_acc = r["expected_accuracy"]
    if not math.isclose(acc, want_acc, abs_tol=1e-6):
        hint = "accuracy = (number of samples whose argmax(logits) equals the label) / (number of samples)."
        if math.isclose(acc, 100 * want_acc, rel_tol=1e-6):
            hint = "Return a fraction in [0, 1], not a percentage."
        raise Mistake("The accuracy is wrong", expected=f"{want_acc:.6f} ({round(want_acc * r['samples'])} of {r['samples']} correct)",
                      found=f"{acc:.6f}", hint=hint)
    ok = [r["expected_loss"], r["expected_batch_mean_loss"]]
    if not any(math.isclose(loss, w, rel_tol=1e-4, abs_tol=1e-6) for w in ok):
        hint = "Weight each batch's mean loss by its number of samples, add up, and divide by the number of samples."
        if any(math.isclose(loss, w / 4, rel_tol=1e-4) for w in ok):
            hint = ("Batch means were added up and then divided by the number of samples: weight each batch's mean by "
                    "its size (loss.item() * labels.size(0)) before dividing by the number of samples.")
        raise Mistake("The mean loss is wrong", expected=f"{r['expected_loss']:.6f}", found=f"{loss:.6f}", hint=hint)


@grade("evaluate", "training")
def test_evaluate_protocol(student):
    """evaluate runs in eval mode under torch.no_grad() and leaves the model unchanged"""
    r = _eval_probe(student)
    check(r["forwards"] > 0, "evaluate never called the model", expected="one forward per batch", found=_log(r))
    check(all(m == "eval" for m in r["forward_modes"]), "The model ran in training mode during evaluation "
          "(it was in training mode when evaluate was called)",
          expected="model.eval() before the loop", found=f"forward modes: {', '.join(r['forward_modes'])}",
          hint="Call model.eval(): otherwise dropout stays on and BatchNorm uses (and updates) batch statistics.",
          cause="evaluate.no_eval_mode")
    check(not any(r["grad_on"]), "The evaluation forwards ran with gradients enabled",
          expected="torch.no_grad() around the loop", found="autograd recording every forward",
          hint="Wrap the loop in `with torch.no_grad():` so no graph is built (less memory, faster).",
          cause="evaluate.no_no_grad")
    check(r["backward_calls"] == 0, "evaluate called backward()", expected="no backward", found=_log(r))
    check(not r["state_changed"], "evaluate changed the model's weights or BatchNorm statistics",
          expected="an unchanged model", found="changed state", hint="Evaluation must not train: eval mode, no optimizer.")


@grade("evaluate", "training")
def test_evaluate_device(student):
    """evaluate moves every batch's inputs and labels to the device"""
    r = _eval_probe(student)
    check(all(r["inputs_moved"]) and r["forwards"] > 0, "The inputs reach the model without being moved to the device",
          expected="inputs.to(device) for every batch", found=_log(r))
    moved = [e for e in r["events"] if e.startswith("labels.to(")]
    check(all(r["labels_moved"]) if r["labels_moved"] else bool(moved), "The labels are left on the CPU",
          expected="labels.to(device) for every batch", found=_log(r),
          hint="Move the labels too: comparing predictions on cuda with labels on the CPU fails on a GPU.")


# --------------------------------------------------------------------------- train_and_compare

def _compare_probe(student, device: str = "cpu") -> dict:
    return cb.run(student.function("train_and_compare"), "compare_protocol", device=device)


@grade("train_and_compare", "training")
def test_train_and_compare_report(student):
    """train_and_compare returns {name: {accuracy, params, train_time_s, history}} for every model, in order"""
    r = _compare_probe(student)
    check(r["result_type"] == "dict", "train_and_compare must return a dict", expected="dict", found=r["result_type"])
    check(r["keys"] == ["narrow", "wide"], "The result's keys must be the models' names, in the order given",
          expected="['narrow', 'wide']", found=str(r["keys"]))
    fields = ["accuracy", "history", "params", "train_time_s"]
    for name, e in r["entries"].items():
        check(e.get("fields") == fields, f"The entry for {name!r} has the wrong fields",
              expected=", ".join(fields), found=", ".join(e.get("fields", [])) or e["type"])
        v = e["values"]
        check(v["params"]["type"] == "int" and int(v["params"]["value"]) == e["true_params"],
              f"params of {name!r} is not the model's parameter count", expected=str(e["true_params"]),
              found=str(v["params"].get("value", v["params"]["type"])), hint="sum(p.numel() for p in model.parameters())")
        acc = cb.number(v["accuracy"])
        check(acc is not None and math.isclose(acc, e["true_accuracy"], abs_tol=1e-6),
              f"accuracy of {name!r} is not the trained model's accuracy on the test loader",
              expected=f"{e['true_accuracy']:.4f}", found=str(acc),
              hint="Evaluate each model on test_loader after training and report the fraction correct "
                   "(if evaluate fails its own tests, fix it first).")
        hist = e.get("history") or []
        numbers = [cb.number(h) for h in hist]
        check(len(hist) == 2 and all(cb.finite(x) for x in numbers), f"history of {name!r} must hold one mean training loss per epoch",
              expected="2 numbers (epochs=2)", found=str(numbers) if hist else v["history"]["type"])
        t = cb.number(v["train_time_s"])
        check(cb.finite(t) and 0 < t <= r["wall_s"] + 0.05, f"train_time_s of {name!r} is not a plausible training time",
              expected=f"seconds between 0 and {r['wall_s']:.2f} (the whole call)", found=str(t),
              hint="time.perf_counter() before the first epoch and after the last one; report the difference in seconds.")


@grade("train_and_compare", "training")
def test_train_and_compare_training(student):
    """train_and_compare trains every model with Adam(lr) and cross-entropy for the given number of epochs"""
    r = _compare_probe(student)
    check(r["result_type"] == "dict", "train_and_compare must return a dict", expected="dict", found=r["result_type"])
    for name, e in r["entries"].items():
        hist = [cb.number(h) for h in e.get("history") or []]
        want = e["replay_history"]
        if e["param_diff"] > 1e-4:
            raise Mistake(f"After training, the weights of {name!r} differ from {len(want)} epochs of Adam(lr) with cross-entropy",
                          expected="the weights of the specified training", found=f"largest difference {e['param_diff']:.3g}",
                          hint="Each model gets its own Adam optimizer over its parameters with the given learning "
                               "rate and a cross-entropy loss, then one train_one_epoch call per epoch. If "
                               "train_one_epoch fails its own tests, fix it first.")
        check(len(hist) == len(want) and all(h is not None and math.isclose(h, w, rel_tol=1e-4) for h, w in zip(hist, want)),
              f"history of {name!r} is not the mean training loss of each epoch",
              expected=", ".join(f"{w:.4f}" for w in want), found=", ".join("?" if h is None else f"{h:.4f}" for h in hist),
              hint="Append the value train_one_epoch returns, once per epoch.")


@grade("train_and_compare", "training")
def test_train_and_compare_device_and_timing(student):
    """train_and_compare moves each model to the device before training it and times the training, not the evaluation"""
    r = _compare_probe(student)
    check(r["result_type"] == "dict", "train_and_compare must return a dict", expected="dict", found=r["result_type"])
    unmoved = [name for name, moved in r["moved_before_training"].items() if not moved]
    check(not unmoved, "A model is trained without being moved to the device",
          expected="model.to(device) before its optimizer is made", found=f"{', '.join(map(repr, unmoved))} never moved",
          hint="On this CPU nothing shows, but on a GPU the batches go to cuda while the weights stay on the CPU. "
               "Move each model before creating its optimizer.", cause="train_and_compare.model_not_moved")
    if not r["clock_reads"]:
        return  # the clock is read through a name imported before the call: the order cannot be seen
    late = [name for name, ok in r["clock_before_evaluation"].items() if not ok]
    check(not late, "train_time_s includes the evaluation",
          expected="the clock read after the last training epoch, before evaluating",
          found=f"no clock read between training and evaluating {', '.join(map(repr, late))}",
          hint="train_time_s measures the training epochs only: stop the clock before evaluating the model.",
          cause="train_and_compare.timing_includes_evaluation")


@grade("train_and_compare", "training")
def test_train_and_compare_gpu_timing(student):
    """On a GPU, train_and_compare trains there and synchronises CUDA before reading the clock"""
    cb.need_cuda()
    r = cb.cuda_result(_compare_probe(student, "cuda"), student)
    check(r["result_type"] == "dict", "train_and_compare must return a dict", expected="dict", found=r["result_type"])
    for name, e in r["entries"].items():
        check(e["param_devices"] == ["cuda:0"], f"{name!r} was not trained on the GPU", expected="parameters on cuda:0",
              found=", ".join(e["param_devices"]), hint="model.to(device) before creating the optimizer.")
    late = [name for name, ok in r["sync_after_training"].items() if not ok]
    check(not late, "The training time is read without waiting for the GPU",
          expected="torch.cuda.synchronize() after the last epoch, before reading the clock",
          found=f"no synchronisation after training {', '.join(repr(n) for n in late)}",
          hint="CUDA kernels run asynchronously: without torch.cuda.synchronize() the clock stops while the GPU is still working.")
