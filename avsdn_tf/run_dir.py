"""The layout of a training run's directory, in one place."""

import os

import tensorflow as tf

from avsdn_tf import fileio, remote

CONFIG = "config.json"
STATE = "state.json"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"
LAST = "last.keras"
BEST = "best.keras"
LOGS = "logs"


class RunDir:
    def __init__(self, path):
        self.path = path

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    @property
    def config(self):
        return self.join(CONFIG)

    @property
    def state(self):
        return self.join(STATE)

    @property
    def metrics(self):
        return self.join(METRICS)

    @property
    def last_checkpoint(self):
        return self.join(CHECKPOINTS, LAST)

    @property
    def best_checkpoint(self):
        return self.join(CHECKPOINTS, BEST)

    @property
    def logs(self):
        return self.join(LOGS)

    def read_config(self):
        config = fileio.read_json(self.config) if tf.io.gfile.exists(self.config) else None
        if config and isinstance(config.get("data_dir"), str):
            remote.use_filesystem(config["data_dir"], f"{self.config} field data_dir")
        return config

    def read_state(self):
        return fileio.read_json(self.state) if tf.io.gfile.exists(self.state) else None
