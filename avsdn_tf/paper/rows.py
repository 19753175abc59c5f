"""The paper's tables: their rows, the metrics each shows, and the accuracies the papers report.

Three tables, as in the AVSDN paper (Lin, Li, Wang, ICASSP 2019): supervised and weakly-supervised
event localization (the AVEL baselines of Tian et al. 2018 and AVSDN), and the ablation of how the
decoder is initialised (TABLES, what `all` runs). More, run on their own (EXTRA_TABLES): AVEL's
cross-modality localization (A2V and V2A accuracy of the AVE authors' AVDLN on the match splits),
which the AVSDN paper does not report, and the field's feature-based models (`field`: AVEL A+V
with attention, AVSDN, PSP and CMBS, fully and weakly supervised, beside their published numbers,
which their authors' code selected on the test split). A table names the metrics of metrics.json
it shows (Table.metrics); records, summaries and renderings carry each of them.

The papers' numbers were measured on the real AVE features. They are kept apart from what is
measured here (their own field in results.json, their own labelled column in the tables), and a
number that could not be checked against the paper is left empty and marked "not verified".
Running the tables is paper/runner.py; rendering them, paper/rendering.py.
"""

import dataclasses

from avsdn_tf import constants
from avsdn_tf.errors import UserError, argument_error
from avsdn_tf.models import registry
from avsdn_tf.models.avdln import task as avdln_task

ALL = "all"

# Where each reported number was read. The AVSDN paper's tables were checked against the
# transcription of arXiv:1902.07473 at this address; only the numbers visible there are filled in.
AVSDN_PAPER = (
    "Lin, Li, Wang: Dual-modality seq2seq network for audio-visual event localization, ICASSP 2019"
    " (arXiv:1902.07473)"
)
TRANSCRIPTION = "https://tomesphere.com/paper/1902.07473"
SUPERVISED_SOURCE = f"{AVSDN_PAPER}, Table 1 (supervised), read at {TRANSCRIPTION}"
WEAK_SOURCE = f"{AVSDN_PAPER}, weakly-supervised results table, read at {TRANSCRIPTION}"
# The paper does not say which supervision its Table 3 uses; its full model's 74.2 equals the
# weakly-supervised AVSDN of Table 2, so the paper's numbers are most likely weak supervision,
# while this project runs the ablation with segment labels (full): the cell says so.
ABLATION_SOURCE = (
    f"{AVSDN_PAPER}, Table 3 (ablation; supervision not stated, most likely weak: "
    "its 74.2 equals Table 2's weakly-supervised AVSDN)"
)
VGG = "VGGish audio, VGG-16 visual"
RESNET = "VGGish audio, ResNet-152 visual"
ABLATION_NOTE = "paper: supervision not stated, most likely weak"
PAPER_COLUMN = "Paper, real AVE features (%) - NOT measured here"
NOT_IN_AVSDN_PAPER = "not reported in the AVSDN paper"
DMRN_ABSENT = f"{NOT_IN_AVSDN_PAPER}: it gives no numbers for AVEL's DMRN"
CROSS_MODAL_ABSENT = (
    f"{NOT_IN_AVSDN_PAPER}: its three tables (supervised, weakly-supervised, ablation) hold no "
    "cross-modality localization results"
)
# The metrics a table can show: metrics.json's key -> (test column, val column, name in the
# progress lines; none for the paper's one accuracy).
METRIC_COLUMNS = {
    "accuracy": ("Accuracy (%), test", "Val (%)", ""),
    "a2v_accuracy": ("A2V (%), test", "A2V val (%)", "A2V"),
    "v2a_accuracy": ("V2A (%), test", "V2A val (%)", "V2A"),
}
FRAME_ACCURACY = "frame-wise test accuracy of the epoch best on val"
# The field table's published numbers (../shared/reference/field_reported_numbers.md): every one
# was selected on the TEST split by its authors' code (the checkpoint kept is the epoch best on
# test); this project selects on val, so its numbers are expected below them on the same data.
ON_TEST = "paper, selected on test by the authors' code"
RELEASE = "VGGish audio, VGG-19 pool5 maps (the AVE release)"
AVEL_SOURCE = "AVEL paper, Tian et al., ECCV 2018 (the AVSDN paper's Tables 1-2 repeat it)"
PSP_SOURCE = "PSP paper, Zhou et al., CVPR 2021, as jasongief/PSP_CVPR_2021's README states"
CMBS_SOURCE = "CMBS paper, Xia, Zhao, CVPR 2022"


@dataclasses.dataclass(frozen=True)
class Reported:
    """One accuracy a paper reports on the real AVE features (percent), and where it was read."""

    accuracy: float
    features: str
    source: str
    note: str = ""  # shown beside the number (e.g. the ablation's unstated supervision)

    def to_json(self):
        number = {
            "accuracy": self.accuracy,
            "features": self.features,
            "source": self.source,
            "verified": True,
        }
        return {**number, "note": self.note} if self.note else number


@dataclasses.dataclass(frozen=True)
class Row:
    model: str  # a registry.names() name; also the row's key and directory name
    method: str
    remarks: str
    reported: tuple = ()  # Reported numbers; empty: not verified (unless `absent` says why)
    extra: bool = False  # not a row of the paper's table
    absent: str = ""  # why the paper has no number for this row (checked), shown in its cell

    def paper_json(self):
        """The row's paper entries for results.json.

        Returns:
            list of dicts: one per Reported number; else one entry with accuracy None, verified
            True and reported False when the paper was checked to have none (`absent`), or
            verified False when the number could not be checked.
        """
        if self.absent:
            return [{"accuracy": None, "verified": True, "reported": False, "note": self.absent}]
        if not self.reported:
            return [
                {
                    "accuracy": None,
                    "verified": False,
                    "note": (
                        "not verified: the paper's number could not be checked, so none is given"
                    ),
                }
            ]
        return [number.to_json() for number in self.reported]


@dataclasses.dataclass(frozen=True)
class Table:
    key: str
    title: str
    supervision: str
    rows: tuple
    metrics: tuple = ("accuracy",)  # metrics.json keys of its val and test entries, shown
    measured: str = FRAME_ACCURACY  # what its measured columns are, for the caption
    test_split: str = "test"  # the split its test columns score


def _avel(model, method, remarks, *reported, extra=False, absent=""):
    return Row(model, method, remarks, tuple(reported), extra, absent=absent)


TABLES = {
    "supervised": Table(
        "supervised",
        "Table 1: supervised audio-visual event localization",
        "full",
        (
            _avel("audio", "AVEL", "audio only", Reported(59.5, "VGGish audio", SUPERVISED_SOURCE)),
            _avel(
                "visual",
                "AVEL",
                "visual only",
                Reported(55.3, VGG, SUPERVISED_SOURCE),
                Reported(65.0, RESNET, SUPERVISED_SOURCE),
            ),
            _avel(
                "av",
                "AVEL",
                "audio+visual",
                Reported(71.4, VGG, SUPERVISED_SOURCE),
                Reported(74.0, RESNET, SUPERVISED_SOURCE),
            ),
            _avel(
                "av_att",
                "AVEL",
                "audio+visual w/ att",
                Reported(72.7, VGG, SUPERVISED_SOURCE),
                Reported(74.7, RESNET, SUPERVISED_SOURCE),
            ),
            _avel(
                "avsdn", "AVSDN", "audio+visual, seq2seq", Reported(75.4, RESNET, SUPERVISED_SOURCE)
            ),
            _avel(
                "dmrn",
                "AVEL DMRN",
                "audio+visual, dual multimodal residual fusion (extra row, "
                "not in the AVSDN paper's table)",
                extra=True,
                absent=DMRN_ABSENT,
            ),
        ),
    ),
    "weak": Table(
        "weak",
        "Table 2: weakly-supervised audio-visual event localization",
        "weak",
        (
            _avel("audio", "AVEL", "audio only", Reported(53.4, "VGGish audio", WEAK_SOURCE)),
            _avel(
                "visual",
                "AVEL",
                "visual only",
                Reported(52.9, VGG, WEAK_SOURCE),
                Reported(63.4, RESNET, WEAK_SOURCE),
            ),
            _avel(
                "av",
                "AVEL",
                "audio+visual",
                Reported(63.7, VGG, WEAK_SOURCE),
                Reported(71.6, RESNET, WEAK_SOURCE),
            ),
            _avel(
                "av_att",
                "AVEL",
                "audio+visual w/ att",
                Reported(66.7, VGG, WEAK_SOURCE),
                Reported(73.3, RESNET, WEAK_SOURCE),
            ),
            _avel("avsdn", "AVSDN", "audio+visual, seq2seq", Reported(74.2, RESNET, WEAK_SOURCE)),
        ),
    ),
    "ablation": Table(
        "ablation",
        "Table 3: ablation, how the AVSDN decoder is initialised",
        "full",
        (
            _avel(
                "avsdn_init_visual",
                "AVSDN (visual init)",
                "decoder initialised by the visual encoder state only",
                Reported(70.2, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
            _avel(
                "avsdn_init_audio",
                "AVSDN (audio init)",
                "decoder initialised by the audio encoder state only",
                Reported(70.9, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
            _avel(
                "avsdn_label_guided",
                "AVSDN (label-guided)",
                "label-guided: each encoder state also trained on the video label",
                Reported(72.6, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
            _avel(
                "avsdn",
                "AVSDN (full fusion)",
                "full fusion of both encoder states (DMRN-style)",
                Reported(74.2, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
        ),
    ),
}
# Tables run on their own, not by `all` (which is the AVSDN paper's three).
EXTRA_TABLES = {
    "cross_modal": Table(
        "cross_modal",
        "Cross-modality localization (AVEL, Tian et al. 2018): A2V and V2A accuracy",
        "full",
        (
            Row(
                avdln_task.NAME,
                "AVEL AVDLN",
                "the AVE authors' audio-visual distance learning network, trained as their "
                "code does",
                absent=CROSS_MODAL_ABSENT,
            ),
        ),
        metrics=("a2v_accuracy", "v2a_accuracy"),
        test_split=avdln_task.CrossModalTask.splits["test"],
        measured=(
            "A2V and V2A accuracy on test_match of the epoch best on val_match (the mean of "
            "the two)"
        ),
    ),
}


def _field_rows(supervised):
    """The field table's rows for one supervision, with the published numbers and what users
    of the authors' code report reaching."""
    pick = 0 if supervised else 1

    def number(pair, features, source, note=ON_TEST):
        return Reported(pair[pick], features, source, note)

    psp_users = (
        (
            Reported(
                75.8, RELEASE, "jasongief/PSP_CVPR_2021 issue 4", "a user of their code, issue 4"
            ),
        )
        if supervised
        else ()
    )
    cmbs_user = (78.18, 72.3)[pick]
    return (
        _avel(
            "av_att",
            "AVEL",
            "audio+visual w/ att",
            number((72.7, 66.7), "VGGish audio, VGG-16 visual", AVEL_SOURCE),
        ),
        _avel(
            "avsdn",
            "AVSDN",
            "audio+visual, seq2seq",
            number((75.4, 74.2), RESNET, AVSDN_PAPER, "as printed in the paper"),
        ),
        _avel(
            "psp",
            "PSP",
            "positive sample propagation, the authors' psp_net",
            number((77.8, 73.5), RELEASE, PSP_SOURCE),
            number((78.0, 73.9), RELEASE, PSP_SOURCE, "their released checkpoint"),
            *psp_users,
        ),
        _avel(
            "cmbs",
            "CMBS",
            "cross-modal background suppression, the authors' model",
            number((79.3, 74.2), RELEASE, CMBS_SOURCE),
            number((79.25, 73.96), RELEASE, "marmot-xy/CMBS issue 1", "their released checkpoint"),
            Reported(cmbs_user, RELEASE, "marmot-xy/CMBS issue 5", "a user of their code, issue 5"),
        ),
    )


FIELD_TABLES = {
    "field_full": Table(
        "field_full",
        "The field's feature-based models, supervised (selected on val here)",
        "full",
        _field_rows(supervised=True),
    ),
    "field_weak": Table(
        "field_weak",
        "The field's feature-based models, weakly supervised (selected on val here)",
        "weak",
        _field_rows(supervised=False),
    ),
}
# --table names that run several tables: the paper's three, and the field's two.
FIELD = "field"
GROUPS = {ALL: tuple(TABLES), FIELD: tuple(FIELD_TABLES)}
KNOWN_TABLES = {**TABLES, **EXTRA_TABLES, **FIELD_TABLES}
TABLE_CHOICES = (*KNOWN_TABLES, *GROUPS)


def select(table=ALL, rows=None, extras=True):
    """[(Table, [Row])] for --table, --rows (model names; None: all) and --extras.

    Args:
        table: a key of KNOWN_TABLES ("supervised", "weak", "ablation", "cross_modal",
            "field_full", "field_weak") or a group: "all" (the paper's three, TABLES), "field"
            (FIELD_TABLES).
        rows: row model names to keep (from the selected tables), or None / []: every row.
        extras: keep the rows that are not in the paper's table (e.g. dmrn).
    Returns:
        list of (Table, [Row]) in TABLES order, tables left without rows dropped.
    Raises:
        errors.UserError: for an unknown table or row name, or when nothing is left to run.
    """
    if table not in TABLE_CHOICES:
        raise argument_error("table", f"one of {list(TABLE_CHOICES)}", repr(table))
    keys = GROUPS.get(table, (table,))
    tables = [KNOWN_TABLES[key] for key in keys]
    known = {row.model for t in tables for row in t.rows}
    wanted = None
    if rows:
        wanted = set(rows)
        unknown = sorted(wanted - known)
        if unknown:
            raise argument_error(
                "rows", f"row names of `table` {table} from {sorted(known)}", unknown
            )
    selection = []
    for t in tables:
        chosen = [
            row
            for row in t.rows
            if (wanted is None or row.model in wanted) and (extras or not row.extra)
        ]
        if chosen:
            selection.append((t, chosen))
    if not selection:
        raise UserError(
            f"`rows` {','.join(rows or [])} `extras={extras}`: expected at least one row to run, "
            "found none"
        )
    return selection


def own_defaults_model(selection):
    """The model whose own defaults (registry.default_hparams) a selection's runs start from.

    Args:
        selection: select()'s [(Table, [Row])].
    Returns:
        the model name when every selected row is that one model and it has defaults of its
        own (the cross_modal table's avdln), else None (the common defaults).
    """
    models = {row.model for _, rows in selection for row in rows}
    if len(models) == 1 and registry.has_defaults(next(iter(models))):
        return models.pop()
    return None


def row_remarks(row, info):
    remarks = row.remarks
    if info.visual_layout == constants.LAYOUT_VECTOR:
        if row.model == "av_att":
            remarks += "; vector visual features have no regions to attend, so this equals A+V here"
        elif row.model == "dmrn":
            remarks += (
                "; vector visual features have no regions to attend, so it fuses them unattended"
                " here"
            )
    elif row.model == avdln_task.NAME:
        remarks += "; visual maps averaged over space inside the model, one vector per segment"
    return remarks
