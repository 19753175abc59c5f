"""The keras_tuner.HyperModel: a sample of the search space -> avsdn_tf HParams -> the model.

The model comes from avsdn_tf.models.tasks (the registry's backbone plus the supervision's heads)
and is
compiled by avsdn_tf.training, the same calls `python -m avsdn_tf.train` makes: there is no
second copy of any model here.
"""

import keras_tuner

from avsdn_tf import hparams
from avsdn_tf.models import registry
from avsdn_tf.training import trainer

# Hyperband puts these in every trial's values; "tuner/epochs" is the trial's epoch count.
TUNER_KEYS_PREFIX = "tuner/"


class AVSDNHyperModel(keras_tuner.HyperModel):
    """HyperModel over one registered model.

    base: the HParams every trial starts from (model, supervision, epochs, seed and every field
    that is not searched); params: the searched fields (tuning.space.build).
    """

    def __init__(self, base, params, audio_dim, visual_shape, num_segments):
        super().__init__(name=f"{base.model}_hypermodel")
        self.base = base.validate()
        self.params = list(params)
        self.audio_dim, self.visual_shape, self.num_segments = (
            audio_dim,
            list(visual_shape),
            num_segments,
        )

    @property
    def searched_names(self):
        return [param.name for param in self.params]

    def declare_hyperparameters(self, hp):
        """Register every searched parameter in `hp` (KerasTuner calls this before sampling).

        Args:
            hp: a keras_tuner.HyperParameters.
        Returns:
            None.
        """
        self.hparams(hp)

    def hparams(self, hp):
        """The HParams of one sample: base, then the active searched values, then Hyperband's
        epochs.

        Args:
            hp: a keras_tuner.HyperParameters holding one sample (a trial's hyperparameters);
                parameters not yet in it are registered at their defaults.
        Returns:
            hparams.HParams, validated.
        Raises:
            errors.UserError: when the sampled values do not make valid HParams.
        """
        values = {}
        for param in self.params:
            value = param.declare(hp)
            if value is not None:
                values[param.name] = float(f"{value:.12g}") if isinstance(value, float) else value
        epochs = hp.values.get(f"{TUNER_KEYS_PREFIX}epochs")
        if epochs:
            values["epochs"] = int(epochs)
        return hparams.from_dict(values, source="search space", base=self.base)

    def build(self, hp):
        """The compiled training model `avsdn_tf.training.train` would fit for this sample.

        Its normalisation layers are the identity: train sets them from the train split's
        statistics when it fits a trial (run_trial), as for any run.
        """
        sample = self.hparams(hp)
        model = registry.task_for(sample).build(
            self.audio_dim, self.visual_shape, self.num_segments
        )
        trainer.compile_model(model, sample, steps_per_epoch=1)
        return model
