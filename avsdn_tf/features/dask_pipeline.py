"""The Beam graph of extraction on Beam's DaskRunner (extract --runner DaskRunner; needs
apache-beam and dask[distributed]). Imported only by dask_extraction.extract_videos.

    Create((index, path) per video, --dask_npartitions partitions) -> ExtractToFiles

and nothing else, because of what Beam 2.77's DaskRunner does with a graph (its dask_runner
and transform_evaluator, checked on a cluster here): only the bag of the pipeline's LAST
transform is computed, so a branch that does not feed it never runs and its sink is silently
empty (WriteToText's finalisation is such a branch: the job ends "DONE" with an empty file); a
ParDo's tagged outputs are not separated (a step reading the side output also gets the main
one's elements); a side input is computed again inside the task that reads it (the extraction
would run once more per side input); and Reshuffle is a no-op (the videos stay in the partitions
Create made, so Create makes them). So the one step writes its results as files whose
names are the video's: features/<video_id>.npz (the single process's file, written atomically)
and a marker beam_progress.marker_path(staging, index) holding the outcome. A task that Dask
runs again (its worker died, its results were lost) rewrites the same files with the same
content: no video can be duplicated, and the driver finds a missing one (its marker is absent)
before publishing anything. The records, shards and statistics are then assembled by the driver
from features/, by the single process's own code.
"""

import json
import logging
import os

import apache_beam as beam
import tensorflow as tf

from avsdn_tf.features import assembly, beam_pipeline, beam_progress, video

_LOG = logging.getLogger(__name__)
_EXTRACTORS = {}  # settings identity -> FeatureExtractor: the networks once per worker process


def _extractor(settings):
    tag = json.dumps(settings.identity(), sort_keys=True)
    if tag not in _EXTRACTORS:
        _EXTRACTORS[tag] = beam_pipeline.load_extractor(settings)
    return _EXTRACTORS[tag]


class ExtractToFiles(beam.DoFn):
    """(index, path) -> index, after writing features/<video_id>.npz and the video's marker.

    The marker (JSON): {"index", "path", "pid": the worker process, and "segments": T of the
    features, or "skipped": why the video cannot be used}.
    """

    def __init__(self, output_dir, staging, settings):
        self._output_dir, self._staging, self._settings = output_dir, staging, settings

    def process(self, element):
        index, path = element
        target = assembly.features_path(self._output_dir, video.video_id(path))
        if tf.io.gfile.exists(target):  # done before, or by a worker that died since
            outcome = {"segments": self._segments(target, path)}
        else:
            _LOG.info("extracting %s in process %d", path, os.getpid())
            try:
                features = beam_pipeline._extract(_extractor(self._settings), path)
            except video.VideoError as error:
                outcome = {"skipped": str(error)}
            else:
                assembly.save_features(target, features)
                outcome = {"segments": int(features.info.num_segments)}
        beam_progress.write_marker(
            self._staging, index, {"index": index, "path": path, "pid": os.getpid(), **outcome}
        )
        yield index

    def _segments(self, target, path):
        """T of the features already in `target`; a file that cannot be read fails the job
        with a message naming it (extract writes them whole: someone else wrote this one)."""
        try:
            audio, _ = assembly.load_features(self._output_dir, video.video_id(path))
        except Exception as error:
            raise RuntimeError(
                f"{target}: expected the features extract writes, found a file that cannot be "
                f"read ({type(error).__name__}: {error}); remove it to extract the video again"
            ) from None
        return len(audio)


def build(pipeline, videos, output_dir, staging, settings):
    """Add the extraction step to `pipeline` (a beam.Pipeline on the DaskRunner, whose Create
    cuts the videos into --dask_npartitions partitions).

    Args:
        videos: [(index, path)] to extract. output_dir: the data directory (features/ there).
        staging: the job's staging directory (markers). settings: feature_settings.FeatureSettings.
    """
    _ = (
        pipeline
        | "Videos" >> beam.Create(list(videos), reshuffle=False)
        | "Extract" >> beam.ParDo(ExtractToFiles(output_dir, staging, settings))
    )
