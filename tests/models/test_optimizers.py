"""PyTorchAdam steps as torch.optim.Adam does, which the PSP and CMBS authors train with."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch

from avsdn_tf import constants
from avsdn_tf.models import optimizers, registry
from avsdn_tf.training import trainer

SHAPES = [(3, 4), (5,)]


def _gradients(steps, scale, seed=0):
    """A fixed sequence of gradients per step, one array per variable of SHAPES."""
    rng = np.random.default_rng(seed)
    return [[scale * rng.normal(size=shape) for shape in SHAPES] for _ in range(steps)]


def _torch_weights(initial, gradients, lr, clip_norm, milestones):
    """The weights after each step of the authors' loop: Adam, clip_grad_norm_, MultiStepLR
    stepped once per step here (so that a few steps cross a milestone)."""
    parameters = [torch.nn.Parameter(torch.tensor(w)) for w in initial]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.5)
    history = []
    for step_gradients in gradients:
        for parameter, gradient in zip(parameters, step_gradients):
            parameter.grad = torch.tensor(gradient)
        if clip_norm:
            torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
        optimizer.step()
        scheduler.step()
        history.append([p.detach().numpy().copy() for p in parameters])
    return history


def _keras_weights(adam, initial, gradients, lr, clip_norm, milestones):
    """The same loop with a Keras optimizer class on float64 variables."""
    variables = [keras.Variable(w, dtype="float64") for w in initial]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [m - 1 for m in milestones], [lr * 0.5**k for k in range(len(milestones) + 1)]
    )
    optimizer = adam(schedule, global_clipnorm=clip_norm or None)
    history = []
    for step_gradients in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step_gradients], variables)
        history.append([keras.ops.convert_to_numpy(v) for v in variables])
    return history


def _largest_difference(found, expected):
    return max(
        np.max(np.abs(f - e))
        for found_step, expected_step in zip(found, expected)
        for f, e in zip(found_step, expected_step)
    )


@pytest.mark.parametrize(
    "gradient_scale, clip_norm",
    [(1e-6, 0.0), (1e-3, 0.0), (1.0, 0.5)],  # small (CMBS weak's regime), moderate, clipped
)
def test_pytorch_adam_takes_torch_adams_steps(gradient_scale, clip_norm):
    rng = np.random.default_rng(1)
    initial = [rng.normal(size=shape) for shape in SHAPES]
    gradients = _gradients(40, gradient_scale)
    lr, milestones = 2.0**-10, [10, 20, 30]  # a rate float32 schedules hold exactly
    expected = _torch_weights(initial, gradients, lr, clip_norm, milestones)
    found = _keras_weights(optimizers.PyTorchAdam, initial, gradients, lr, clip_norm, milestones)
    # Each step moves a weight by about lr (1e-3); unclipped, the two agree to float64 rounding.
    # clip_grad_norm_ scales by max_norm / (norm + 1e-6), Keras by max_norm / norm: a 1e-7
    # relative difference in each clipped gradient.
    assert _largest_difference(found, expected) < (1e-9 if clip_norm else 1e-12)


def test_keras_adam_steps_shorter_than_torch_where_gradients_are_small():
    """What PyTorchAdam is for: Keras' own Adam is not the authors' optimizer."""
    rng = np.random.default_rng(1)
    initial = [rng.normal(size=shape) for shape in SHAPES]
    gradients = _gradients(40, 1e-6)
    lr = 7e-4
    start = np.concatenate([w.ravel() for w in initial])

    def moved(history):
        return np.abs(np.concatenate([w.ravel() for w in history[-1]]) - start).mean()

    torch_moved = moved(_torch_weights(initial, gradients, lr, 0.0, [100]))
    keras_moved = moved(_keras_weights(keras.optimizers.Adam, initial, gradients, lr, 0.0, [100]))
    assert keras_moved < 0.6 * torch_moved


def _compiled(model_name, supervision):
    hp = registry.default_hparams(model_name, supervision)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    trainer.compile_model(model, hp, steps_per_epoch=4)
    return model


@pytest.mark.parametrize(
    "model_name, supervision, expected",
    [
        ("psp", constants.FULL, optimizers.PyTorchAdam),
        ("cmbs", constants.WEAK, optimizers.PyTorchAdam),
        ("avsdn", constants.FULL, keras.optimizers.Adam),
    ],
)
def test_each_task_trains_with_its_authors_adam(model_name, supervision, expected):
    assert type(_compiled(model_name, supervision).optimizer) is expected


def test_a_saved_run_resumes_with_pytorch_adam_and_its_moments(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizers.PyTorchAdam(1e-3, global_clipnorm=0.5), loss="mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "last.keras")
    model.save(path)
    loaded = registry.load_model(path)
    assert type(loaded.optimizer) is optimizers.PyTorchAdam
    assert loaded.optimizer.epsilon == optimizers.PYTORCH_EPSILON
    assert loaded.optimizer.global_clipnorm == 0.5
    assert int(loaded.optimizer.iterations) == 2
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored)
        )
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("model_name", ["psp", "cmbs"])
def test_a_saved_model_loads_in_a_process_that_imports_only_the_registry(model_name, tmp_path):
    """registry.load_model (compile=True) in a notebook that imported no model and no training
    code: the model folder's own layers and PyTorchAdam must be found by their registered names."""
    hp = registry.default_hparams(model_name, constants.WEAK)
    model = registry.task_for(hp).build(128, (7, 7, 512), None)
    trainer.compile_model(model, hp, steps_per_epoch=4)
    path = str(tmp_path / "run.keras")
    model.save(path)
    script = (
        "import sys; from avsdn_tf.models import registry; "
        "model = registry.load_model(sys.argv[1]); "
        "print(model.count_params(), type(model.optimizer).__name__)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", script, path], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(model.count_params()), "PyTorchAdam"]


@pytest.mark.parametrize("option", [{"amsgrad": True}, {"weight_decay": 0.01}])
def test_pytorch_adam_refuses_what_it_does_not_implement(option):
    with pytest.raises(ValueError, match=next(iter(option))):
        optimizers.PyTorchAdam(**option)
