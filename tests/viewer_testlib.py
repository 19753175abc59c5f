"""What the viewer tests share: prediction dicts shaped as predict writes them, Debian's chromium
driven by playwright, and a guard that records a page's console errors and network requests.

The browser runs with every network path switched off (the machine has no network: without these
flags chromium keeps retrying refused connections) and playwright's fresh temporary profile
(launch() gives every browser its own new user-data-dir).
"""

import os

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def intervals(labels, class_names, background):
    """Event runs of labels [T] written out by hand (not through the code under test)."""
    runs, start = [], 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            if labels[start] != background:
                label = int(labels[start])
                runs.append(
                    {"label": label, "class_name": class_names[label], "start": start, "end": t}
                )
            start = t
    return runs


def prediction(video, predicted, class_names, truth=None, seed=0, background=28):
    """A dict shaped as predictors.predict_video's result, with seeded probabilities whose
    argmax is `predicted` (probability 0.6 + a share of the rest).

    Args:
        video: the video file's path. predicted: int [T]. class_names: the K names.
        truth: int [T] or None. seed: the probabilities' seed. background: its class id.
    Returns:
        dict: video, video_id, seconds, duration, segments, intervals, probabilities [T][K] and
        ground_truth (labels, intervals, accuracy) when truth is given.
    """
    predicted = np.asarray(predicted)
    rest = np.random.default_rng(seed).dirichlet(np.ones(len(class_names)), len(predicted)) * 0.4
    probabilities = rest
    probabilities[np.arange(len(predicted)), predicted] += 0.6
    result = {
        "video": video,
        "video_id": os.path.splitext(os.path.basename(video))[0],
        "seconds": len(predicted),
        "duration": float(len(predicted)),
        "segments": [
            {
                "start": t,
                "end": t + 1,
                "label": int(label),
                "class_name": class_names[label],
                "probability": float(probabilities[t, label]),
            }
            for t, label in enumerate(predicted)
        ],
        "intervals": intervals(predicted, class_names, background),
        "probabilities": probabilities.tolist(),
    }
    if truth is not None:
        truth = np.asarray(truth)
        result["ground_truth"] = {
            "labels": truth.tolist(),
            "intervals": intervals(truth, class_names, background),
            "accuracy": float((truth == predicted).mean()),
        }
    return result


def launch(playwright):
    """Debian's chromium, headless, through playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class PageGuard:
    """Aborts every request whose URL does not start with one of `allowed` (default: file:)
    and records it, and records console errors and uncaught page errors, for one page."""

    def __init__(self, page, allowed=("file:",)):
        self.allowed = tuple(allowed)
        self.blocked, self.errors = [], []
        page.route("**/*", self._route)
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def problems(self):
        return {"blocked requests": self.blocked, "errors": self.errors}
