"""Hyperparameter search for the avsdn_tf models with KerasTuner.

space.py       what is searched for each registered model, and the --space_file overrides
hypermodel.py  the keras_tuner.HyperModel: a sample of the space -> avsdn_tf HParams -> model
tuner.py       the keras_tuner Tuner whose trials are avsdn_tf.training.train runs; the oracles
results.py     trials.json, best_hparams.json and the summary table
tune.py        `python -m tuning.tune`, the command
"""
