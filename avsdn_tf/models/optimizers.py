"""Adam in PyTorch's form, for the models whose authors train with torch.optim.Adam (PSP, CMBS).

Keras' Adam and torch.optim.Adam differ in where epsilon enters. With bias corrections
c1 = 1 - beta_1^t and c2 = 1 - beta_2^t, both keep the same moments m and v, and step

    Keras:   w -= lr * sqrt(c2) / c1 * m / (sqrt(v) + eps),  eps = 1e-7
    PyTorch: w -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps),  eps = 1e-8

so Keras' epsilon is in effect eps / sqrt(c2): 3.2e-6 at step 1, 1e-6 at step 10, 1.6e-7 at
step 500, against PyTorch's constant 1e-8. Where gradients are small, Keras' steps are much
shorter than the authors': CMBS's weak loss (a soft margin on softmax outputs) gives, at the
authors' initialisation on 64 synthetic noise-5 videos, a median per-weight gradient of 4e-8
(90th percentile 4e-7), so Keras' first steps move the median weight under 2% as far as
torch.optim.Adam does. No single Keras epsilon matches every step.
"""

import keras
from keras import ops

PYTORCH_EPSILON = 1e-8  # torch.optim.Adam's default eps, added to sqrt(v_hat)


@keras.saving.register_keras_serializable(package="avsdn_tf")
class PyTorchAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam stepping as torch.optim.Adam does (amsgrad and weight decay off).

    Same variables (iterations, momentums, velocities) and arguments as keras.optimizers.Adam,
    so schedules, gradient clipping, distribution strategies and checkpoints work unchanged;
    only epsilon's place and default differ (module docstring).
    """

    def __init__(self, learning_rate=0.001, epsilon=PYTORCH_EPSILON, name="pytorch_adam", **kw):
        for option in ("amsgrad", "weight_decay"):  # torch's forms of both differ from Keras'
            if kw.get(option):
                raise ValueError(f"PyTorchAdam does not implement {option}")
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, name=name, **kw)

    def update_step(self, gradient, variable, learning_rate):
        """One step of torch.optim.Adam on `variable` (Keras calls this per variable).

        Args:
            gradient: the variable's (clipped) gradient, same shape.
            variable: the model variable to update.
            learning_rate: this step's rate (the schedule's value at the step index).
        """
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        # convert_to_tensor, not cast: cast rounds a Python float through float32 first.
        beta_1, beta_2 = (ops.convert_to_tensor(b, dtype) for b in (self.beta_1, self.beta_2))
        root = ops.sqrt(1 - ops.power(beta_2, step))  # sqrt(c2)
        # lr / c1 * m / (sqrt(v) / root + eps), written as Keras writes its step (same tensor
        # ops, so the same cost): lr * root / c1 * m / (sqrt(v) + eps * root).
        alpha = lr * root / (1 - ops.power(beta_1, step))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denominator = ops.add(ops.sqrt(v), self.epsilon * root)
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), denominator))
