"""Test-only PyTorch reference of PSP (jasongief/PSP_CVPR_2021), both supervisions.

Written for this project from the authors' fully_model.py and weakly_model.py: the modules and
parameters carry the authors' names, so state_dict() has their keys and shapes (including the
parameters their forward pass never reads). It runs on the CPU; no CUDA calls. Used by
tests/models/test_psp.py and benchmarks/bench_psp.py only.
"""

import torch
from torch import nn
from torch.nn import functional as F

EPS = 1e-8


class AVGA(nn.Module):
    """AVEL's audio-guided visual attention over the H x W regions (per-region audio prior)."""

    def __init__(self, audio_dim=128, visual_dim=512, hidden=512, regions=49):
        super().__init__()
        self.affine_audio = nn.Linear(audio_dim, hidden)
        self.affine_video = nn.Linear(visual_dim, hidden)
        self.affine_v = nn.Linear(hidden, regions, bias=False)
        self.affine_g = nn.Linear(hidden, regions, bias=False)
        self.affine_h = nn.Linear(regions, 1, bias=False)

    def forward(self, audio, video):
        batch, time = video.shape[:2]
        regions = video.reshape(batch * time, -1, video.shape[-1])  # [B*T, R, C]
        content = self.affine_v(F.relu(self.affine_video(regions)))  # [B*T, R, R]
        prior = self.affine_g(F.relu(self.affine_audio(audio.reshape(batch * time, -1))))
        scores = self.affine_h(torch.tanh(content + prior.unsqueeze(2))).squeeze(2)
        weights = F.softmax(scores, dim=-1).unsqueeze(1)  # [B*T, 1, R]
        return torch.bmm(weights, regions).reshape(batch, time, -1)


class LSTM_A_V(nn.Module):  # noqa: N801 (the authors' module name: state_dict keys)
    """One bidirectional LSTM per modality, zero initial states."""

    def __init__(self, audio_dim, visual_dim, hidden=128):
        super().__init__()
        self.lstm_audio = nn.LSTM(audio_dim, hidden, 1, batch_first=True, bidirectional=True)
        self.lstm_video = nn.LSTM(visual_dim, hidden, 1, batch_first=True, bidirectional=True)

    def forward(self, audio, visual):
        return self.lstm_audio(audio)[0], self.lstm_video(visual)[0]


def _normalise_rows(matrix):
    return matrix / (matrix.sum(dim=-1, keepdim=True) + EPS)


class PSP(nn.Module):
    """The positive sample propagation block; `full` adds the renormalisation and the fc."""

    def __init__(self, dim=256, full=True, dropout=0.1):
        super().__init__()
        self.full = full
        self.v_L1 = nn.Linear(dim, dim, bias=False)
        self.v_L2 = nn.Linear(dim, dim, bias=False)
        if full:
            self.v_fc = nn.Linear(dim, dim, bias=False)
        self.a_L1 = nn.Linear(dim, dim, bias=False)
        self.a_L2 = nn.Linear(dim, dim, bias=False)
        if full:
            self.a_fc = nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def _prune(self, affinity, threshold):
        gamma = _normalise_rows(affinity)
        gamma = gamma * (gamma > threshold).float()
        return _normalise_rows(gamma) if self.full else gamma

    def forward(self, a_fea, v_fea, threshold):
        v1, v2, a1, a2 = (
            self.dropout(F.relu(layer(x)))
            for layer, x in (
                (self.v_L1, v_fea),
                (self.v_L2, v_fea),
                (self.a_L1, a_fea),
                (self.a_L2, a_fea),
            )
        )
        beta_va = F.relu(torch.bmm(v2, a1.transpose(1, 2)) / (v2.shape[2] ** 0.5))
        beta_av = beta_va.transpose(1, 2)
        v_psp = v_fea + torch.bmm(self._prune(beta_va, threshold), a2)
        a_psp = a_fea + torch.bmm(self._prune(beta_av, threshold), v1)
        if self.full:
            v_psp = self.dropout(F.relu(self.v_fc(v_psp)))
            a_psp = self.dropout(F.relu(self.a_fc(a_psp)))
        v_psp, a_psp = self.layer_norm(v_psp), self.layer_norm(a_psp)
        return 0.5 * (v_psp + a_psp), v_psp, a_psp


class Classify(nn.Module):
    """The authors' unused per-modality classifier (fully_model.Classify): keys only."""

    def __init__(self, dim=256, classes=28):
        super().__init__()
        self.L1 = nn.Linear(dim, 64, bias=False)
        self.L2 = nn.Linear(64, classes, bias=False)


class PSPFull(nn.Module):
    """fully_model.psp_net: forward(audio, video) -> (fusion, logits [B,T,29], similarity [B,T])."""

    def __init__(self, threshold=0.099, audio_dim=128, visual_dim=512, hidden=128, classes=29):
        super().__init__()
        self.threshold = threshold
        self.fa = nn.Sequential(
            nn.Linear(audio_dim, 256, bias=False), nn.Linear(256, 128, bias=False)
        )
        self.fv = nn.Sequential(
            nn.Linear(visual_dim, 256, bias=False), nn.Linear(256, 128, bias=False)
        )
        self.linear_v = nn.Linear(visual_dim, audio_dim)
        self.attention = AVGA(128, visual_dim)
        self.lstm_a_v = LSTM_A_V(128, hidden, hidden)
        self.psp = PSP(2 * hidden, full=True)
        self.v_classify = Classify()
        self.a_classify = Classify()
        self.L1 = nn.Linear(2 * hidden, 64, bias=False)
        self.L2 = nn.Linear(64, classes, bias=False)
        self.L3 = nn.Linear(256, 64)
        self.L4 = nn.Linear(64, 2)

    def forward(self, audio, video):
        audio = self.fa(audio)
        visual = self.fv(self.attention(audio, video))
        lstm_audio, lstm_video = self.lstm_a_v(audio, visual)
        fusion, v_psp, a_psp = self.psp(lstm_audio, lstm_video, self.threshold)
        similarity = (F.normalize(v_psp, dim=-1) * F.normalize(a_psp, dim=-1)).sum(dim=-1)
        return fusion, self.L2(F.relu(self.L1(fusion))), similarity


class PSPWeak(nn.Module):
    """weakly_model.psp_net: forward(audio, video) -> (video probs [B,29], scores [B,T,29])."""

    def __init__(self, threshold=0.095, audio_dim=128, visual_dim=512, hidden=128, classes=29):
        super().__init__()
        self.threshold = threshold
        self.temperature = nn.Parameter(torch.ones(1, classes))
        self.linear_v = nn.Linear(visual_dim, audio_dim)
        self.attention = AVGA(audio_dim, visual_dim)
        self.lstm_a_v = LSTM_A_V(audio_dim, hidden, hidden)
        self.psp = PSP(2 * hidden, full=False)
        self.W1 = nn.Linear(2 * hidden, 1, bias=False)
        self.W2 = nn.Linear(64, 1, bias=False)
        self.W3 = nn.Linear(classes, 1, bias=False)
        self.L1 = nn.Linear(2 * hidden, 64, bias=False)
        self.L2 = nn.Linear(64, classes, bias=False)

    def forward(self, audio, video):
        visual = self.linear_v(self.attention(audio, video))
        lstm_audio, lstm_video = self.lstm_a_v(audio, visual)
        fusion = self.psp(lstm_audio, lstm_video, self.threshold)[0]
        score = self.L2(F.relu(self.L1(fusion)))
        score = score * torch.sigmoid(F.relu(self.W3(score)))
        return F.softmax(score.mean(dim=1), dim=-1), score


def avps_loss(similarity, targets):
    """measure.AVPSLoss: MSE of the ReLU'd, sum-normalised similarity against the targets."""
    positive = F.relu(similarity)
    return F.mse_loss(positive / (positive.sum(dim=-1, keepdim=True) + EPS), targets)
