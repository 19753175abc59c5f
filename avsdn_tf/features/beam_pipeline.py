"""The Apache Beam transforms of extraction on a cluster (extract --runner ...; needs apache-beam).

Imported only by beam_extraction.run_pipeline, so the single-process command never needs Beam.
The graph, for videos listed in list files in the staging directory (write_video_lists: a
few hundred bytes per video, so the job graph stays small however many videos there are, and
each video carries its own label rows):

    Create(list files) -> read -> Reshuffle -> ExtractVideo --records--> shard assignment
        -> GroupByKey -> WriteShard
                                        --moments--> CombinePerKey(MergeMoments)  (per split)
                                        --outcomes-> CombineGlobally(Tally)
    Tally + moments + written shards -> RESULT_FILE in the staging directory

ExtractVideo runs where the runner puts it: the networks are loaded once per worker process
(DoFn.setup, through a Shared handle, so the threads of one process share them), each video's
features go to features/<video_id>.npz as in the single process (a rerun resumes from them) and
its records and statistics flow on. Shards are numbered as the single process numbers them:
records are ranked by (video index, label row) within their split and dealt round-robin over
shards.shard_count shards; each shard is written by one worker under a temporary name and
renamed, so a retried bundle rewrites it whole.
"""

import contextlib
import dataclasses
import json
import logging
import os

import apache_beam as beam
import tensorflow as tf
from apache_beam.utils import shared

from avsdn_tf import fileio, remote
from avsdn_tf.data import normalization, shards
from avsdn_tf.features import (
    assembly,
    beam_progress,
    feature_extractor,
    labels,
    video,
    visual_features,
)

_LOG = logging.getLogger(__name__)
RESULT_FILE = "beam_result.json"  # the pipeline's last output, read by the driver
LISTS_DIR = "videos"  # in the staging directory: the list files of videos
VIDEOS_PER_LIST = 1000  # videos per list file (one element of the pipeline's first stage)
MOMENTS = "moments"
OUTCOMES = "outcomes"


def load_extractor(settings):
    """The FeatureExtractor of `settings`, remote weight files (gs://, s3://) read through local
    copies (h5py and NumPy read local files only; the VGGish checkpoint is read by TensorFlow)."""
    with contextlib.ExitStack() as copies:
        local = {}
        for name in ("visual_weights", "vggish_pca_params"):
            value = getattr(settings, name)
            if value and value != visual_features.IMAGENET and remote.is_remote(value):
                remote.use_filesystem(value, f"--{name}")
                local[name] = copies.enter_context(remote.local_copy(value))
        if remote.is_remote(settings.vggish_checkpoint):
            remote.use_filesystem(settings.vggish_checkpoint, "--vggish_checkpoint")
        return feature_extractor.FeatureExtractor(dataclasses.replace(settings, **local))


def _extract(extractor, path):
    """extractor.extract(path) for a local or remote video (through a local copy, which PyAV
    needs); messages and the features name `path`."""
    if not remote.is_remote(path):
        return extractor.extract(path)
    remote.use_filesystem(path, "--videos")
    if not tf.io.gfile.exists(path):
        raise video.VideoError(f"{path}: video file not found")
    with remote.local_copy(path) as local:
        try:
            features = extractor.extract(local)
        except video.VideoError as error:
            raise video.VideoError(str(error).replace(local, path)) from None
    features.info = dataclasses.replace(features.info, path=path)
    return features


def write_video_lists(staging, paths, video_labels):
    """The videos as JSON-lines files under staging/LISTS_DIR; returns their paths.

    Each line: {"index": position in `paths`, "path", "rows": the video's label rows as dicts,
    or null when no labels were given (a labelled video without rows has [])}.
    """
    names = []
    for start in range(0, len(paths), VIDEOS_PER_LIST):
        lines = []
        for index, path in enumerate(paths[start : start + VIDEOS_PER_LIST], start):
            rows = None if video_labels is None else video_labels.get(video.video_id(path), [])
            rows = None if rows is None else [dataclasses.asdict(row) for row in rows]
            lines.append(json.dumps({"index": index, "path": path, "rows": rows}))
        name = os.path.join(staging, LISTS_DIR, f"list-{start // VIDEOS_PER_LIST:05d}.jsonl")
        tf.io.gfile.makedirs(os.path.dirname(name))
        fileio.write_text(name, "\n".join(lines) + "\n")
        names.append(name)
    return names


def read_video_list(name):
    """The videos of one list file: (index, path, rows: list of labels.LabelRow, or None)."""
    with tf.io.gfile.GFile(name, "r") as handle:
        for line in handle.read().splitlines():
            value = json.loads(line)
            rows = value["rows"]
            rows = None if rows is None else [labels.LabelRow(**row) for row in rows]
            yield value["index"], value["path"], rows


class ExtractVideo(beam.DoFn):
    """(index, path, rows) -> (split, (index, row), serialized record) per record of the video.

    Side outputs: MOMENTS (split, normalization.Moments) per record, and OUTCOMES
    (index, status, path, detail) per video: status "extracted" or "resumed" with detail the
    number of segments T, or "skipped" with the reason.
    """

    def __init__(self, output_dir, settings, split, staging=None):
        self._output_dir, self._settings, self._split = output_dir, settings, split
        self._staging = staging  # where each video's progress marker goes (beam_progress)
        self._shared = shared.Shared()  # one FeatureExtractor per worker process
        self._extractor = None

    def setup(self):
        remote.use_filesystem(self._output_dir, "--output_dir")  # s3://: tensorflow-io, here too
        tag = json.dumps(self._settings.identity(), sort_keys=True)
        self._extractor = self._shared.acquire(lambda: load_extractor(self._settings), tag=tag)

    def process(self, element):
        yield from self._process(element)
        if self._staging:  # the video is done: the driver's progress line counts it
            index, path, _ = element
            beam_progress.write_marker(self._staging, index, {"index": index, "path": path})

    def _process(self, element):
        index, path, rows = element
        key = video.video_id(path)
        video_labels = None if rows is None else {key: rows}
        if rows is not None and not rows:
            yield beam.pvalue.TaggedOutput(
                OUTCOMES, (index, "skipped", path, assembly.no_labels_reason(key))
            )
            return
        if tf.io.gfile.exists(assembly.features_path(self._output_dir, key)):
            audio, visual = assembly.load_features(self._output_dir, key)
            status = "resumed"
        else:
            try:
                features = _extract(self._extractor, path)
            except video.VideoError as error:
                _LOG.warning("skipped: %s", error)
                yield beam.pvalue.TaggedOutput(OUTCOMES, (index, "skipped", path, str(error)))
                return
            assembly.save_features(assembly.features_path(self._output_dir, key), features)
            audio, visual, status = features.audio, features.visual, "extracted"
            _LOG.info("extracted %s (%d s) in process %d", path, len(audio), os.getpid())
        moments = normalization.Moments(self._settings.audio_dim, self._settings.visual_shape[-1])
        moments.add(audio, visual)
        records = assembly.video_records(key, audio, visual, video_labels, self._split)
        for row, (split, _, serialized) in enumerate(records):
            yield split, (index, row), serialized
            yield beam.pvalue.TaggedOutput(MOMENTS, (split, moments))
        yield beam.pvalue.TaggedOutput(OUTCOMES, (index, status, path, len(audio)))


class MergeMoments(beam.CombineFn):
    """Sums and counts of every record's features: normalization.Moments merged, as JSON."""

    def __init__(self, audio_dim, channels):
        self._audio_dim, self._channels = audio_dim, channels

    def create_accumulator(self):
        return normalization.Moments(self._audio_dim, self._channels)

    def add_input(self, accumulator, moments):
        return accumulator.merge(moments)

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator.to_json()


class Tally(beam.CombineFn):
    """The outcomes of every video: counts, seconds of video extracted, lengths (each length
    once, and "segments": path -> T of each video written), skipped ones."""

    def create_accumulator(self):
        return {
            "extracted": 0,
            "resumed": 0,
            "seconds_extracted": 0,
            "lengths": [],
            "segments": {},  # path -> T of each video written
            "skipped": [],
        }

    def add_input(self, tally, outcome):
        index, status, path, detail = outcome
        if status == "skipped":
            tally["skipped"].append([index, path, detail])
        else:
            tally[status] += 1
            tally["seconds_extracted"] += detail if status == "extracted" else 0
            tally["segments"][path] = detail
            if detail not in tally["lengths"]:
                tally["lengths"].append(detail)
        return tally

    def merge_accumulators(self, tallies):
        tallies = iter(tallies)
        merged = next(tallies)
        for tally in tallies:
            for name in ("extracted", "resumed", "seconds_extracted"):
                merged[name] += tally[name]
            merged["lengths"] += [t for t in tally["lengths"] if t not in merged["lengths"]]
            merged["skipped"] += tally["skipped"]
            merged["segments"].update(tally["segments"])
        return merged

    def extract_output(self, tally):
        tally["skipped"].sort()
        tally["lengths"].sort()
        return tally


def _deal_shards(split_and_orders, videos_per_shard):
    """((split, order), (shard index, shard count)) for every record of one split, dealt
    round-robin in (video index, row) order over shards.shard_count shards."""
    split, orders = split_and_orders
    orders = sorted(orders)
    count = shards.shard_count(len(orders), videos_per_shard)
    for rank, order in enumerate(orders):
        yield (split, order), (rank % count, count)


class WriteShard(beam.DoFn):
    """((split, index, count), [serialized]) -> one shard file in staging; yields
    (split, file name, records written)."""

    def __init__(self, staging):
        self._staging = staging

    def process(self, element):
        (split, index, count), serialized = element
        name = shards.shard_names(split, count)[index]
        path = os.path.join(self._staging, name)
        written = 0
        with fileio.atomic_file(path) as temporary, tf.io.TFRecordWriter(temporary) as writer:
            for record in serialized:
                writer.write(record)
                written += 1
        yield split, name, written


def _write_result(tally, staging, moments, written):
    fileio.write_json(
        os.path.join(staging, RESULT_FILE),
        {"tally": tally, "moments": moments, "shards": sorted(list(shard) for shard in written)},
    )


def build(pipeline, paths, output_dir, staging, settings, video_labels, split, videos_per_shard):
    """Add extraction's transforms to `pipeline`; RESULT_FILE in `staging` is its last output.

    Args:
        pipeline: a beam.Pipeline. paths: the video paths (their order numbers the records).
        output_dir: the data directory (features/ is written there). staging: where the video
            lists, shards and RESULT_FILE go. settings: feature_settings.FeatureSettings.
            video_labels: video id -> label rows, or None. split: the split of records whose
            row names none. videos_per_shard: as shards.shard_count takes it.
    """
    lists = write_video_lists(staging, paths, video_labels)
    outputs = (
        pipeline
        | "VideoLists" >> beam.Create(lists, reshuffle=False)
        | "Videos" >> beam.FlatMap(read_video_list)
        # A fusion break: the runner spreads the videos over its workers from here.
        | "Distribute" >> beam.Reshuffle()
        | "Extract"
        >> beam.ParDo(ExtractVideo(output_dir, settings, split, staging)).with_outputs(
            MOMENTS, OUTCOMES, main="records"
        )
    )
    records = outputs.records
    dealt = (
        records
        | "Orders" >> beam.Map(lambda record: (record[0], record[1]))
        | "OrdersBySplit" >> beam.GroupByKey()
        | "Deal" >> beam.FlatMap(_deal_shards, videos_per_shard)
    )
    written = (
        records
        | "ToShard"
        >> beam.Map(
            lambda record, dealt: ((record[0], *dealt[(record[0], record[1])]), record[2]),
            dealt=beam.pvalue.AsDict(dealt),
        )
        | "ByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(staging))
    )
    moments = outputs[MOMENTS] | "Statistics" >> beam.CombinePerKey(
        MergeMoments(settings.audio_dim, settings.visual_shape[-1])
    )
    tally = outputs[OUTCOMES] | "Tally" >> beam.CombineGlobally(Tally())
    _ = tally | "Result" >> beam.Map(
        _write_result,
        staging,
        moments=beam.pvalue.AsDict(moments),
        written=beam.pvalue.AsList(written),
    )
