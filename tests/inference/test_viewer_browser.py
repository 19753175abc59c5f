"""The viewer's pages in a real browser: Debian's chromium, headless, driven by playwright.

One browser per session (conftest.py's `browser`); each test opens the page in a fresh context
whose every non-file request is aborted and recorded, and ends by asserting that none happened
and that nothing was logged as an error. A screenshot of the page is kept as a test artifact
($TEST_UNDECLARED_OUTPUTS_DIR under Bazel, else pytest's base temporary directory).
"""

import functools
import http.server
import json
import os
import threading

import numpy as np
import pytest

from avsdn_tf import constants, fileio
from avsdn_tf.inference import viewer

from media_testlib import make_video
from viewer_testlib import PageGuard, prediction

pytest.importorskip("matplotlib")
pytest.importorskip("av")

# A file and a class name that would be markup if they were not escaped.
VIDEO_NAME = "clip <b>&amp; \"one\" 'x'"
HOSTILE_CLASS = '<img src=x onerror="window.pwned=1">'
PREDICTED = [28, 2, 2, 7, 28]
TRUTH = [28, 2, 2, 2, 28]
VIEWPORT = {"width": 1000, "height": 720}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A 5-s mp4 under videos/, its prediction's JSON and page and index.html under out/."""
    root = tmp_path_factory.mktemp("viewer")
    (root / "videos").mkdir()
    (root / "out").mkdir()
    video = make_video(root / "videos" / f"{VIDEO_NAME}.mp4", seconds=5.0, size=(160, 96))
    names = list(constants.class_names())
    names[2] = HOSTILE_CLASS
    result = prediction(video, PREDICTED, names, truth=TRUTH, seed=3)
    fileio.write_json(str(root / "out" / f"{VIDEO_NAME}.json"), result)
    page = viewer.write_video_page(result, names, str(root / "out"))
    viewer.write_index(str(root / "out"))
    return {"root": root, "page": page, "names": names, "result": result}


@pytest.fixture
def opened(browser, site):
    """The video page in a fresh context, its metadata loaded; yields (page, guard)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    guard = PageGuard(page)
    page.goto(f"file://{site['page']}")
    page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=15000)
    yield page, guard
    context.close()


def _current(page, row="prediction"):
    """data-second of every cell of `row` that carries aria-current="true"."""
    return page.eval_on_selector_all(
        f'[data-row="{row}"] [aria-current="true"]', "cells => cells.map(c => c.dataset.second)"
    )


def _seek(page, time):
    """Set the video's currentTime and wait for the seek to finish; returns currentTime."""
    return page.evaluate(
        """async (time) => {
            const video = document.querySelector("video");
            await new Promise((done) => {
                video.addEventListener("seeked", done, { once: true });
                video.currentTime = time;
            });
            return video.currentTime;
        }""",
        time,
    )


def _time(page):
    return page.evaluate("document.querySelector('video').currentTime")


def _clean(guard):
    assert guard.problems() == {"blocked requests": [], "errors": []}


@pytest.fixture
def served(site):
    """python -m http.server's handler serving the site's root (videos/ and out/) on a free
    local port, in a thread; yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site["root"]))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _artifacts_dir(tmp_path_factory):
    directory = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or str(
        tmp_path_factory.getbasetemp() / "artifacts"
    )
    os.makedirs(directory, exist_ok=True)
    return directory


def test_the_video_loads_and_plays_and_the_playhead_follows(opened, tmp_path_factory):
    page, guard = opened
    page.wait_for_function("document.querySelector('video').readyState >= 2", timeout=15000)
    assert page.evaluate("document.querySelector('video').error") is None
    assert page.evaluate("document.querySelector('video').duration") == pytest.approx(5.0, abs=0.1)
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.play(); }")
    page.wait_for_function("document.querySelector('video').currentTime > 1.3", timeout=15000)
    page.evaluate("document.querySelector('video').pause()")
    page.wait_for_function("document.querySelector('video').paused")
    time = _time(page)
    second = int(time)
    assert _current(page) == [str(second)] and _current(page, "truth") == [str(second)]
    # The playhead stands inside the current cell, at the fraction of the second played.
    box = page.locator(f'[data-row="prediction"] [data-second="{second}"]').bounding_box()
    playhead = page.locator(".playhead").bounding_box()
    expected = box["x"] + (time - second) * box["width"]
    assert playhead["x"] == pytest.approx(expected, abs=3)
    screenshot = os.path.join(_artifacts_dir(tmp_path_factory), "viewer_video_page.png")
    page.screenshot(path=screenshot, full_page=True)
    with open(screenshot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {screenshot}")
    _clean(guard)


def test_exactly_the_second_set_on_the_video_is_current(opened, site):
    page, guard = opened
    probabilities = np.asarray(site["result"]["probabilities"])
    for time, second in ((0.4, 0), (3.6, 3)):
        assert int(_seek(page, time)) == second
        assert _current(page) == [str(second)] and _current(page, "truth") == [str(second)]
        names = page.eval_on_selector_all("#top-classes .name", "e => e.map(x => x.textContent)")
        expected = np.argsort(-probabilities[second], kind="stable")[: viewer.TOP_CLASSES]
        assert names == [site["names"][c] for c in expected]
    _clean(guard)


def test_a_click_on_a_cell_seeks_into_its_second(opened):
    page, guard = opened
    for second in (3, 1):
        page.locator(f'[data-row="prediction"] [data-second="{second}"]').click()
        assert second <= _time(page) < second + 1
        assert _current(page) == [str(second)]
    page.locator('[data-row="truth"] [data-second="4"]').click()
    assert 4 <= _time(page) < 5
    _clean(guard)


def test_arrow_keys_step_one_second(opened):
    page, guard = opened
    page.locator('[data-row="prediction"] [data-second="1"]').click()
    page.keyboard.press("ArrowRight")
    assert 2 <= _time(page) < 3 and _current(page) == ["2"]
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    assert 0 <= _time(page) < 1 and _current(page) == ["0"]  # stops at the first second
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    assert 4 <= _time(page) < 5 and _current(page) == ["4"]  # and at the last
    _clean(guard)


def test_every_cell_names_the_class_of_the_json(opened, site):
    page, guard = opened
    with open(site["page"][: -len(".html")] + ".json") as handle:
        written = json.load(handle)
    for row, labels in (
        ("prediction", [s["label"] for s in written["segments"]]),
        ("truth", written["ground_truth"]["labels"]),
    ):
        cells = page.eval_on_selector_all(
            f'[data-row="{row}"] [data-second]',
            "cells => cells.map(c => [c.dataset.second, c.textContent, c.title])",
        )
        assert [int(k) for k, _, _ in cells] == list(range(len(labels)))
        assert [text for _, text, _ in cells] == [site["names"][c] for c in labels]
        assert all(site["names"][c] in title for (_, _, title), c in zip(cells, labels))
    _clean(guard)


def test_names_with_markup_are_shown_literally_and_run_nothing(opened, site):
    page, guard = opened
    assert page.locator("h1").text_content() == VIDEO_NAME
    assert page.title() == f"{VIDEO_NAME}: predicted events"
    assert page.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
    index = page.context.new_page()
    index_guard = PageGuard(index)
    index.goto(f"file://{site['root'] / 'out' / viewer.INDEX}")
    link = index.locator("td a")
    assert link.text_content() == VIDEO_NAME
    link.click()
    index.wait_for_function("document.querySelector('video') !== null")
    assert index.locator("h1").text_content() == VIDEO_NAME  # the link reaches the page
    _clean(guard)
    _clean(index_guard)


def test_nothing_but_files_is_requested_and_the_guard_would_see_it(opened):
    page, guard = opened
    page.locator('[data-row="prediction"] [data-second="2"]').click()
    page.keyboard.press("ArrowRight")
    _clean(guard)
    # The guard is live: a request to the network is aborted and recorded.
    page.evaluate("fetch('http://example.invalid/x').catch(() => null)")
    page.wait_for_timeout(200)
    assert guard.blocked == ["http://example.invalid/x"]


def test_a_ten_minute_timeline_keeps_readable_cells_and_scrolls(browser, tmp_path):
    names = constants.class_names()
    seconds = 600
    longest = max(range(29), key=lambda c: len(names[c]))
    labels = np.full((3, seconds), constants.PAD_LABEL)
    labels[0] = np.arange(seconds) % 29
    labels[1, :1] = 5
    labels[2, :10] = longest  # a 10-s video of the longest class name
    predictions = labels.copy()
    predictions[0, ::3] = 28
    predictions[1, :1] = 6
    predictions[2, :5] = 28
    probabilities = np.full((3, seconds, 29), 1 / 29)
    summary = {
        "accuracy": 0.5,
        "segments": seconds + 11,
        "videos": 3,
        "mean_class_accuracy": None,
        "per_class_accuracy": {name: None for name in names},
        "confusion_matrix": np.zeros((29, 29), int).tolist(),
    }
    path = viewer.write_evaluation_page(
        str(tmp_path / "eval_test.html"),
        summary,
        names,
        (["long", "short", "ten"], labels, predictions, probabilities),
        "long on test",
    )
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    guard = PageGuard(page)
    page.goto(f"file://{path}")
    widths = page.eval_on_selector_all(
        '[data-row="prediction"] [data-second]', "c => c.map(x => x.getBoundingClientRect().width)"
    )
    assert len(widths) == 1 + 10 + seconds  # worst first: 1 s (accuracy 0), 10 s (0.5), 600 s
    assert min(widths) >= viewer.CELL_MIN_WIDTH_PX - 0.5
    scrollers = page.eval_on_selector_all(
        ".timeline:has([data-row])", "t => t.map(x => [x.scrollWidth, x.clientWidth])"
    )
    (short_scroll, short_client), (ten_scroll, ten_client), (long_scroll, long_client) = scrollers
    assert short_scroll <= short_client  # one second fits
    assert ten_scroll <= ten_client  # ten seconds fit, long names cut short (title has them)
    assert long_scroll > long_client and long_client <= VIEWPORT["width"]  # 600 s scroll
    _clean(guard)
    context.close()


def test_served_by_http_server_the_pages_play_and_seek(browser, served):
    """http.server answers no range requests: the page reads the video whole to seek in it."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    guard = PageGuard(page, allowed=(served + "/", "blob:"))
    page.goto(f"{served}/out/{viewer.INDEX}")
    page.locator("td a").click()
    page.wait_for_function(
        "(() => { const v = document.querySelector('video');"
        " return v && v.seekable.length > 0 && v.seekable.end(0) > 4; })()",
        timeout=15000,
    )
    page.locator('[data-row="prediction"] [data-second="3"]').click()
    assert 3 <= _time(page) < 4 and _current(page) == ["3"]
    page.keyboard.press("ArrowLeft")
    assert 2 <= _time(page) < 3 and _current(page) == ["2"]
    _clean(guard)
    context.close()
