"""HTML pages of predictions and evaluations: watch a video beside its timeline.

`predict --output_dir DIR` writes DIR/<video_id>.html per video (the video, its timeline of
predicted and, when known, ground-truth classes per second, a playhead that follows the video,
the top classes of the second playing) and DIR/index.html (a table of every prediction in DIR);
`evaluate` writes eval_<split>.html (accuracies, the confusion matrix, the timelines of the
videos it gets most wrong).

Every page is one self-contained file: its style and script are inline, nothing is loaded from
the network, so it works opened from disk and served by `python -m http.server` (which answers
no range requests, so there the page reads the video once whole, to be able to seek in it).
Every name (video, class) is HTML-escaped, and the data the script reads is JSON with <, > and &
escaped. The <video> refers to the input by its path relative to the page (video_source).

The contract for tests and scripts: the rows are [data-row="prediction"] and [data-row="truth"],
each cell [data-second="k"] (k from 0); the cells of the second under the playhead carry
aria-current="true". The cells use the PNG timeline's colours (timeline.colour).
"""

import html
import importlib.util
import json
import os
import urllib.parse

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, fileio, remote
from avsdn_tf.errors import input_error
from avsdn_tf.inference import timeline
from avsdn_tf.models import metrics

INDEX = "index.html"
TOP_CLASSES = 5  # classes listed for the second under the playhead
WORST_VIDEOS = 12  # timelines on an evaluation page
CELL_MIN_WIDTH_PX = 56  # a cell never gets narrower: long videos scroll instead

_STYLE = """
:root { --cell-min: CELL_MIN_WIDTHpx; --header: 7.5rem; font-family: system-ui, sans-serif; }
body { margin: 1.5rem; color: #222; background: #fff; }
h1 { font-size: 1.3rem; overflow-wrap: anywhere; } h2 { font-size: 1.1rem; }
table.list { border-collapse: collapse; } .list td, .list th { padding: .25rem .6rem;
  border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
video { display: block; width: min(100%, 40rem); max-height: 60vh; background: #000; }
.timeline { overflow-x: auto; margin: .8rem 0; border: 1px solid #ddd; }
.lanes { position: relative; }
.row { display: flex; }
.row-name { position: sticky; left: 0; z-index: 2; flex: 0 0 var(--header); background: #fff;
  font-size: .85rem; padding: .4rem; box-sizing: border-box; }
.cells { display: flex; flex: 1 1 0; min-width: 0; }
.cell { flex: 1 0 var(--cell-min); min-width: var(--cell-min); box-sizing: border-box;
  border: 1px solid #fff; padding: .35rem .2rem; font-size: .75rem; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; cursor: pointer; text-align: center; }
.cell[aria-current="true"] { outline: 3px solid #000; outline-offset: -3px; }
.ruler .cell { background: #fff; color: #666; cursor: default; padding: .1rem; }
.playhead { position: absolute; top: 0; bottom: 0; width: 2px; background: #d00; left: 0;
  pointer-events: none; z-index: 1; }
.top { list-style: none; padding: 0; max-width: 32rem; }
.top li { display: flex; align-items: center; gap: .5rem; margin: .2rem 0; }
.top .name { flex: 0 0 12rem; overflow-wrap: anywhere; }
.bar { height: .9rem; } .swatch { width: .9rem; height: .9rem; display: inline-block; }
.confusion td, .confusion th { font-size: .7rem; padding: .15rem; text-align: right; }
.confusion th.column { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; }
.hint { color: #666; font-size: .85rem; }
""".replace("CELL_MIN_WIDTH", str(CELL_MIN_WIDTH_PX))

# The video page's behaviour: the playhead follows the video (timeupdate, seeks, and every
# frame while it plays); a click on a cell seeks into its second; arrow keys step a second.
_SCRIPT = """
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("viewer-data").textContent);
  const video = document.querySelector("video");
  const rows = Array.from(document.querySelectorAll("[data-row]"));
  const playhead = document.querySelector(".playhead");
  const scroller = document.querySelector(".timeline");
  const top = document.getElementById("top-classes");
  const caption = document.getElementById("current-second");
  let current = -1;
  const secondAt = (time) => Math.max(0, Math.min(data.seconds - 1, Math.floor(time)));
  const cellOf = (row, k) => row.querySelector('[data-second="' + k + '"]');

  function showTop(k) {
    top.replaceChildren();
    for (const [index, p] of data.top[k]) {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = data.colours[index];
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = data.classes[index];
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = (12 * p).toFixed(2) + "rem";
      bar.style.background = data.colours[index];
      const value = document.createElement("span");
      value.textContent = p.toFixed(3);
      item.append(swatch, name, bar, value);
      top.append(item);
    }
    let text = k + "\\u2013" + (k + 1) + " s: " + data.classes[data.prediction[k]];
    if (data.truth) text += " (ground truth: " + data.classes[data.truth[k]] + ")";
    caption.textContent = text;
  }

  function mark(k) {
    if (k === current) return;
    for (const row of rows) {
      const old = row.querySelector('[aria-current="true"]');
      if (old) old.removeAttribute("aria-current");
      const cell = cellOf(row, k);
      if (cell) cell.setAttribute("aria-current", "true");
    }
    current = k;
    showTop(k);
  }

  function place(time) {
    const k = secondAt(time);
    mark(k);
    const cell = cellOf(rows[0], k);
    const within = Math.min(Math.max(time - k, 0), 1);
    const left = cell.offsetLeft + within * cell.offsetWidth;
    playhead.style.left = left + "px";
    if (left < scroller.scrollLeft || left > scroller.scrollLeft + scroller.clientWidth) {
      scroller.scrollLeft = Math.max(0, left - scroller.clientWidth / 3);
    }
  }

  function seek(k) {
    const second = Math.max(0, Math.min(data.seconds - 1, k));
    video.currentTime = second;
    place(second);
  }

  // A server without range requests (python -m http.server) leaves an mp4 unseekable: then
  // the video is read once whole into memory (same origin) and played from there.
  function makeSeekable() {
    if (location.protocol === "file:" || video.currentSrc.startsWith("blob:")) return;
    if (video.seekable.length && video.seekable.end(0) >= video.duration - 0.5) return;
    fetch(video.currentSrc)
      .then((response) => (response.ok ? response.blob() : Promise.reject(response.status)))
      .then((blob) => {
        const time = video.currentTime;
        video.src = URL.createObjectURL(blob);
        video.currentTime = time;
      })
      .catch(() => {});  // the video still plays from the start, unseekable
  }

  function follow() {
    place(video.currentTime);
    if (!video.paused && !video.ended) requestAnimationFrame(follow);
  }

  for (const event of ["timeupdate", "seeking", "seeked", "loadedmetadata", "pause"]) {
    video.addEventListener(event, () => place(video.currentTime));
  }
  video.addEventListener("play", () => requestAnimationFrame(follow));
  document.querySelector(".lanes").addEventListener("click", (event) => {
    const cell = event.target.closest("[data-second]");
    if (cell && cell.closest("[data-row]")) seek(Number(cell.dataset.second));
  });
  window.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    event.stopPropagation();
    seek(current + (event.key === "ArrowRight" ? 1 : -1));
  }, true);
  window.addEventListener("resize", () => place(video.currentTime));
  if (video.readyState >= 1) makeSeekable();
  else video.addEventListener("loadedmetadata", makeSeekable, { once: true });
  place(0);
})();
"""


def pages_available():
    """Whether pages can be written: the cells take the PNG's colours, which need matplotlib."""
    return importlib.util.find_spec("matplotlib") is not None


def _escape(text):
    return html.escape(str(text), quote=True)


def _script_json(value):
    """JSON safe inside a <script> element: <, > and & (and the JS line separators) escaped."""
    text = json.dumps(value, separators=(",", ":"))
    for character in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(character, f"\\u{ord(character):04x}")
    return text


def _href(path):
    """A relative path or file name as a URL reference (percent-encoded, then HTML-escaped)."""
    return _escape(urllib.parse.quote(path.replace(os.sep, "/"), safe="/"))


def _colours(class_index):
    """(background, text) CSS colours of a class: the PNG's colour, dark or white text."""
    red, green, blue = timeline.colour(class_index)[:3]
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    background = "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (red, green, blue)))
    return background, ("#000" if luminance > 0.45 else "#fff")


def _page(title, body, script=""):
    """A whole HTML document: inline style, the body, and an optional inline script."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{_escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n" + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n"
    )


def _row(name, title, labels, class_names, probabilities=None):
    """One timeline row: a sticky name, then a cell per second coloured by its class.

    Args:
        name: the data-row value ("prediction" or "truth"). title: the row's visible name.
        labels: int [T] class per second. class_names: the K names.
        probabilities: float [T] probability of each second's class, or None.
    Returns:
        str, the row's HTML.
    """
    cells = []
    for k, label in enumerate(labels):
        label = int(label)
        background, text = _colours(label)
        tip = f"{k}\u2013{k + 1} s: {class_names[label]}"
        if probabilities is not None:
            tip += f" (p {float(probabilities[k]):.3f})"
        cells.append(
            f'<div class="cell" role="listitem" data-second="{k}" data-label="{label}"'
            f' title="{_escape(tip)}" style="background:{background};color:{text}">'
            f"{_escape(class_names[label])}</div>"
        )
    return (
        f'<div class="row" data-row="{name}" role="list" aria-label="{_escape(title)}">'
        f'<div class="row-name">{_escape(title)}</div><div class="cells">{"".join(cells)}'
        "</div></div>"
    )


def timeline_html(predicted, class_names, truth=None, probabilities=None, playhead=False):
    """The timeline: the ground-truth row (when known) above the prediction row, a ruler of
    seconds, and with `playhead` the line that follows the video. It scrolls sideways when the
    cells (never narrower than CELL_MIN_WIDTH_PX) do not fit.

    Args:
        predicted: int [T] predicted class per second.
        class_names: the K class names.
        truth: int [T] ground-truth class per second, or None.
        probabilities: float [T] probability of each predicted class, or None.
        playhead: add the playhead element (video pages).
    Returns:
        str, the timeline's HTML.
    """
    step = 1 if len(predicted) <= 30 else 5  # seconds between the ruler's numbers
    ruler = "".join(
        f'<div class="cell">{k}</div>' if k % step == 0 else '<div class="cell"></div>'
        for k in range(len(predicted))
    )
    rows = [_row("prediction", "prediction", predicted, class_names, probabilities)]
    if truth is not None:
        rows.insert(0, _row("truth", "ground truth", truth, class_names))
    return (
        '<div class="timeline"><div class="lanes" style="min-width: calc(var(--header) + '
        f'{len(predicted)} * var(--cell-min))">'
        + ('<div class="playhead" aria-hidden="true"></div>' if playhead else "")
        + "".join(rows)
        + f'<div class="row ruler" aria-hidden="true"><div class="row-name">second</div>'
        f'<div class="cells">{ruler}</div></div></div></div>'
    )


def _intervals_text(intervals):
    if not intervals:
        return "none (background throughout)"
    return "; ".join(f"{i['class_name']} {i['start']}\u2013{i['end']} s" for i in intervals)


def video_source(video, output_dir):
    """What a page's <video> refers to: the input by its path relative to the page's directory,
    or, when the pages go to a storage URL (where no relative path reaches a local file), a copy
    written beside the page.

    Args:
        video: the local video file predicted.
        output_dir: the directory of the pages (local path or storage URL).
    Returns:
        str, the reference relative to output_dir (not yet URL-encoded).
    """
    if not remote.is_remote(output_dir):
        return os.path.relpath(os.path.abspath(video), os.path.abspath(output_dir))
    name = os.path.basename(video)
    with fileio.atomic_file(os.path.join(output_dir, name)) as temporary:
        tf.io.gfile.copy(video, temporary, overwrite=True)
    return name


def _check_result(result, class_names):
    """The result's probabilities float [T, K] and predicted labels int [T] (its segments' labels,
    as the JSON has them); one UserError naming the field when their shapes disagree."""
    seconds = int(result["seconds"])
    probabilities = np.asarray(result["probabilities"], np.float32)
    if probabilities.shape != (seconds, len(class_names)):
        raise input_error(
            f"prediction of {result['video_id']} field probabilities",
            f"[{seconds}, {len(class_names)}] (seconds x classes)",
            list(probabilities.shape),
        )
    predicted = np.asarray([segment["label"] for segment in result["segments"]], np.int64)
    if predicted.shape != (seconds,):
        raise input_error(
            f"prediction of {result['video_id']} field segments",
            f"{seconds} segments (one per second)",
            len(predicted),
        )
    return probabilities, predicted


def video_page(result, class_names, source):
    """The page of one video's prediction (predictors.predict_video's result).

    Args:
        result: the prediction dict (video_id, seconds, segments, intervals, probabilities
            [T][K], ground_truth when known).
        class_names: the K class names.
        source: the <video>'s reference (video_source), relative to the page.
    Returns:
        str, the HTML document.
    Raises:
        errors.UserError: when the probabilities are not [seconds, K] or the segments are not
            one per second.
    """
    probabilities, predicted = _check_result(result, class_names)
    truth = result.get("ground_truth")
    truth_labels = np.asarray(truth["labels"]) if truth else None
    order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :TOP_CLASSES]
    data = {
        "seconds": len(predicted),
        "classes": list(class_names),
        "colours": [_colours(c)[0] for c in range(len(class_names))],
        "prediction": predicted.tolist(),
        "truth": truth_labels.tolist() if truth else None,
        "top": [
            [[int(c), round(float(probabilities[k, c]), 4)] for c in order[k]]
            for k in range(len(predicted))
        ],
    }
    name = result["video_id"]
    facts = [f"{result['seconds']} s", f"events: {_intervals_text(result['intervals'])}"]
    if truth:
        facts.append(f"ground truth: {_intervals_text(truth['intervals'])}")
        facts.append(f"frame-wise accuracy {truth['accuracy']:.3f}")
    body = (
        f'<p><a href="{INDEX}">all videos</a></p><h1>{_escape(name)}</h1>'
        f"<p>{_escape(' · '.join(facts))}</p>"
        f'<video controls preload="auto" src="{_href(source)}"></video>'
        + timeline_html(
            predicted,
            class_names,
            truth_labels,
            probabilities[np.arange(len(predicted)), predicted],
            playhead=True,
        )
        + '<p class="hint">Click a second to play from it; \u2190 and \u2192 step a second.</p>'
        '<h2 id="current-second"></h2><ol class="top" id="top-classes"></ol>'
        f'<script type="application/json" id="viewer-data">{_script_json(data)}</script>'
    )
    return _page(f"{name}: predicted events", body, _SCRIPT)


def write_video_page(result, class_names, output_dir):
    """Write output_dir/<video_id>.html for one prediction (atomically).

    Args:
        result: predictors.predict_video's dict (its "video" is the local input file).
        class_names: the K class names.
        output_dir: the pages' directory (local path or storage URL), already made.
    Returns:
        str, the page's path.
    """
    source = video_source(result["video"], output_dir)
    path = os.path.join(output_dir, f"{result['video_id']}.html")
    fileio.write_text(path, video_page(result, class_names, source))
    return path


def _is_prediction(value):
    return isinstance(value, dict) and {"video_id", "seconds", "intervals", "segments"} <= set(
        value
    )


def index_page(results):
    """The table of videos: name (a link to its page), duration, events, accuracy when known.

    Args:
        results: prediction dicts (predictors.predict_video's), in the order to list them.
    Returns:
        str, the HTML document.
    """
    rows = []
    for result in results:
        truth = result.get("ground_truth")
        accuracy = f"{truth['accuracy']:.3f}" if truth else "\u2014"
        rows.append(
            f'<tr><td><a href="{_href(result["video_id"] + ".html")}">'
            f"{_escape(result['video_id'])}</a></td>"
            f"<td>{float(result.get('duration', result['seconds'])):.1f} s</td>"
            f"<td>{_escape(_intervals_text(result['intervals']))}</td><td>{accuracy}</td></tr>"
        )
    body = (
        f"<h1>Predicted events: {len(results)} video{'s' if len(results) != 1 else ''}</h1>"
        '<table class="list"><thead><tr><th>video</th><th>duration</th><th>events</th>'
        "<th>frame-wise accuracy</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
    return _page("Predicted events", body)


def write_index(output_dir):
    """Write output_dir/index.html listing every prediction JSON in output_dir (by video id).

    Args:
        output_dir: a directory predict wrote to (local path or storage URL).
    Returns:
        str, the index's path.
    """
    results = []
    for path in sorted(tf.io.gfile.glob(os.path.join(output_dir, "*.json"))):
        try:
            value = fileio.read_json(path)
        except (ValueError, tf.errors.OpError):
            continue  # not a prediction: another tool's file
        if _is_prediction(value):
            results.append(value)
    path = os.path.join(output_dir, INDEX)
    fileio.write_text(path, index_page(sorted(results, key=lambda r: r["video_id"])))
    return path


# ---------------------------------------------------------------------------------------------
# evaluate's page.


def worst_videos(ids, labels, predictions, probabilities, count=WORST_VIDEOS):
    """The videos a model gets most wrong: lowest frame-wise accuracy first (then by id).

    Args:
        ids: N video ids. labels, predictions: int [N, T], constants.PAD_LABEL past a video's end.
        probabilities: float [N, T, K]. count: at most this many videos.
    Returns:
        list of dicts: video_id, accuracy, labels [T_i], predictions [T_i], probabilities [T_i]
        (of each predicted class), padding removed.
    """
    videos = []
    for i, video_id in enumerate(ids):
        valid = labels[i] != constants.PAD_LABEL
        truth, predicted = labels[i][valid], predictions[i][valid]
        if not len(truth):
            continue
        videos.append(
            {
                "video_id": video_id,
                "accuracy": metrics.frame_accuracy(truth, predicted),
                "labels": truth,
                "predictions": predicted,
                "probabilities": probabilities[i][valid][np.arange(len(predicted)), predicted],
            }
        )
    return sorted(videos, key=lambda v: (v["accuracy"], v["video_id"]))[:count]


def _confusion_html(confusion, class_names):
    """The confusion matrix as a table: rows truth, columns prediction, shaded by row share."""
    confusion = np.asarray(confusion)
    totals = np.maximum(confusion.sum(1, keepdims=True), 1)
    head = "".join(f'<th class="column">{_escape(name)}</th>' for name in class_names)
    rows = []
    for i, name in enumerate(class_names):
        cells = "".join(
            f'<td style="background:rgba(30,90,200,{share:.2f});'
            f'color:{"#fff" if share > 0.5 else "#222"}">{count or ""}</td>'
            for count, share in zip(confusion[i], confusion[i] / totals[i], strict=True)
        )
        rows.append(f"<tr><th>{_escape(name)}</th>{cells}</tr>")
    return (
        '<div class="timeline"><table class="confusion"><thead><tr><th>truth \\ predicted</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def evaluation_page(summary, class_names, videos, title):
    """evaluate's page: overall and per-class accuracy, the confusion matrix, the timelines of
    the videos it gets most wrong (features only: no video).

    Args:
        summary: metrics.summarize's dict (accuracy, per_class_accuracy, mean_class_accuracy,
            confusion_matrix, segments, videos).
        class_names: the K class names.
        videos: worst_videos' list.
        title: the page's title, e.g. "RUN on test".
    Returns:
        str, the HTML document.
    """
    confusion = np.asarray(summary["confusion_matrix"])
    per_class = "".join(
        f'<tr><td><span class="swatch" style="background:{_colours(c)[0]}"></span> '
        f"{_escape(name)}</td><td>{int(confusion[c].sum())}</td><td>"
        + (
            "\u2014"
            if summary["per_class_accuracy"].get(name) is None
            else f"{summary['per_class_accuracy'][name]:.3f}"
        )
        + "</td></tr>"
        for c, name in enumerate(class_names)
    )
    timelines = "".join(
        f"<h3>{_escape(video['video_id'])}: frame-wise accuracy {video['accuracy']:.3f}</h3>"
        + timeline_html(video["predictions"], class_names, video["labels"], video["probabilities"])
        for video in videos
    )
    mean_class = summary.get("mean_class_accuracy")
    body = (
        f"<h1>{_escape(title)}</h1><p>frame-wise accuracy <strong>{summary['accuracy']:.4f}"
        f"</strong> over {summary['segments']} segments of {summary['videos']} videos"
        + (f"; mean per-class accuracy {mean_class:.4f}" if mean_class is not None else "")
        + '</p><h2>Per-class accuracy</h2><table class="list"><thead><tr><th>class</th>'
        f"<th>segments</th><th>accuracy</th></tr></thead><tbody>{per_class}</tbody></table>"
        "<h2>Confusion matrix (segments)</h2>"
        + _confusion_html(confusion, class_names)
        + f"<h2>The {len(videos)} videos it gets most wrong</h2>{timelines}"
    )
    return _page(title, body)


def write_evaluation_page(path, summary, class_names, predictions, title):
    """Write evaluate's page for a split (atomically).

    Args:
        path: the HTML file (local path or storage URL).
        summary: metrics.summarize's dict of the split.
        class_names: the K class names.
        predictions: tasks.segment_predictions' (ids [N], labels [N, T], predictions [N, T],
            probabilities [N, T, K]) of the same split.
        title: the page's title.
    Returns:
        path.
    """
    videos = worst_videos(*predictions)
    fileio.write_text(path, evaluation_page(summary, class_names, videos, title))
    return path
