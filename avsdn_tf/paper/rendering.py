"""The paper's tables rendered: results.md (Markdown) and the aligned text printed at the end.

Both read the results.json summary (paper/runner.run) and the tables' definitions
(paper/rows.py); measured numbers and the papers' reported ones stay in separate columns.
"""

from avsdn_tf.paper.rows import KNOWN_TABLES, METRIC_COLUMNS, NOT_IN_AVSDN_PAPER, PAPER_COLUMN


def _percent(summary):
    mean, std = summary["mean"], summary["std"]
    if mean is None:
        return "pending"
    return f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def _paper_cell(paper):
    if paper[0].get("reported") is False:
        return NOT_IN_AVSDN_PAPER
    if paper[0]["accuracy"] is None:
        return "n/a (not verified)"
    if len(paper) == 1:
        note = paper[0].get("note")
        return f"{paper[0]['accuracy']:.1f}" + (f" ({note})" if note else "")
    return " / ".join(
        (f"{p['accuracy']:.1f}" if round(p["accuracy"], 1) == p["accuracy"] else str(p["accuracy"]))
        + f" ({p['note']})"
        if p.get("note")
        else f"{p['accuracy']:.1f} ({p['features'].split(', ')[-1]})"
        for p in paper
    )


def _table_cells(table, rows):
    header = [
        "Method",
        *(column for metric in table.metrics for column in METRIC_COLUMNS[metric][:2]),
        "Remarks",
        PAPER_COLUMN,
    ]
    body = []
    for row in rows:
        remarks = row["remarks"] + (
            f" (same runs as {', '.join(row['same_runs_as'])})" if row["same_runs_as"] else ""
        )
        if not row["complete"] and row["seeds_done"]:
            remarks += f" ({len(row['seeds_done'])} of {len(row['seeds'])} seeds done)"
        body.append(
            [
                row["method"],
                *(
                    _percent(row[f"{split}_{metric}"])
                    for metric in table.metrics
                    for split in ("test", "val")
                ),
                remarks,
                _paper_cell(row["paper"]),
            ]
        )
    return header, body


def _caption(table, seeds, summary):
    """The sentence under a table's title: the data, what was measured, over which seeds.

    Args:
        table: the Table. seeds: its rows' seeds.
        summary: the results.json dict (data_label, dataset.splits, max_videos).
    Returns:
        str.
    """
    measured = table.measured
    if table.test_split != "test":  # the data label counts the test split's videos
        videos = summary["dataset"]["splits"].get(table.test_split, 0)
        if summary["max_videos"]:
            videos = min(videos, summary["max_videos"])
        measured += f" ({videos} {table.test_split} videos)"
    spread = (
        f"mean ± sample std over seeds {', '.join(map(str, seeds))}"
        if len(seeds) > 1
        else f"seed {seeds[0]}"
    )
    return (
        f"Measured here on {summary['data_label']}: {measured},"
        f" {spread}. The last column is what the paper reports on the real AVE features; it was NOT"
        " measured here and is not comparable unless the data is the real AVE release."
    )


def _sources(rows):
    sources = sorted({p["source"] for row in rows for p in row["paper"] if p.get("source")})
    lines = [f"Paper numbers: {source}." for source in sources]
    if any(not row["paper"][0]["verified"] for row in rows):
        lines.append(
            "n/a (not verified): the paper's number for that row could not be checked against the "
            "paper, so none is given."
        )
    return lines


def render_markdown(summary):
    """results.md: every table of the summary as a Markdown table with caption and sources.

    Args:
        summary: the results.json dict (run() builds it; needs rows, tables, data_dir,
            data_label, base_hparams, max_videos, complete).
    Returns:
        str, the Markdown text.
    """
    lines = [
        "# Experiments: measured tables beside the published numbers",
        "",
        (
            f"Data: `{summary['data_dir']}` ({summary['data_label']}). Epochs per run: "
            f"{summary['base_hparams']['epochs']}; max videos per split:"
            f" {summary['max_videos'] or 'all'}. "
            "Status: "
            + (
                "complete."
                if summary["complete"]
                else "INCOMPLETE (rerun the same command to resume)."
            )
        ),
        "",
    ]
    for key in summary["tables"]:
        table = KNOWN_TABLES[key]
        rows = [row for row in summary["rows"] if row["table"] == key]
        header, body = _table_cells(table, rows)
        lines += [
            f"## {table.title}",
            "",
            _caption(table, rows[0]["seeds"], summary),
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        lines += [""] + _sources(rows) + [""]
    return "\n".join(lines)


def render_text(summary, key):
    """One table as aligned plain text, for the console.

    Args:
        summary: the results.json dict (run() builds it).
        key: the table's key in KNOWN_TABLES; summary must hold rows of it.
    Returns:
        str, several lines without a final newline.
    """
    table = KNOWN_TABLES[key]
    rows = [row for row in summary["rows"] if row["table"] == key]
    header, body = _table_cells(table, rows)
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]

    def line(cells):
        """One table line: the cells padded to their column widths, trailing spaces removed.

        Args:
            cells: one str per column.
        Returns:
            str.
        """
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    text = [
        table.title,
        _caption(table, rows[0]["seeds"], summary),
        "",
        line(header),
        line(["-" * w for w in widths]),
        *map(line, body),
        *_sources(rows),
    ]
    return "\n".join(text)
