"""TEST-ONLY PyTorch reference of CMBS (Xia, Zhao, CVPR 2022), both supervision variants.

Written for the exactness tests from the authors' model/main_model.py and model/models.py
(marmot-xy/CMBS): the module and attribute names are theirs, so `state_dict()` has the keys and
shapes their checkpoints have, including the modules their forward never uses (each relation
module's template `encoder_layer` / `decoder_layer`, the decoder layers' `self_attn`, the
attention's `ave_bottleneck`, the supervised model's `video_norm` / `audio_norm`, the weak
model's `classifier`). Differences from theirs: no `.cuda()`, no `.double()` inside; the
computation is theirs, time-first as theirs.
"""

import copy

import torch
from torch import nn
from torch.nn import functional as F

FULL_CONFIG = {
    "video_inputdim": 512,
    "audio_inputdim": 128,
    "d_model": 256,
    "alpha": 0.1,
    "gamma": 0.3,
    "beta": 0.4,
}
WEAK_CONFIG = {
    "video_inputdim": 512,
    "audio_inputdim": 128,
    "d_model": 256,
    "alpha": 0.2,
    "gamma": 0.5,
    "beta": 0.5,
}


class EncoderLayer(nn.Module):
    def __init__(self, d_model, nhead, dim_feedforward=1024, dropout=0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def feed_forward(self, x):
        x = self.norm1(x)
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x))))))

    def forward(self, src):
        attended = self.self_attn(src, src, src)[0]
        return self.feed_forward(src + self.dropout1(attended))


class DecoderLayer(EncoderLayer):
    def __init__(self, d_model, nhead, dim_feedforward=1024, dropout=0.1):
        super().__init__(d_model, nhead, dim_feedforward, dropout)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)

    def forward(self, tgt, memory):
        memory = torch.cat([memory, tgt], dim=0)
        attended = self.multihead_attn(tgt, memory, memory)[0]
        return self.feed_forward(tgt + self.dropout1(attended))


class Encoder(nn.Module):
    def __init__(self, layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])

    def forward(self, x, *memory):
        for layer in self.layers:
            x = layer(x, *memory)
        return x


class InternalTemporalRelationModule(nn.Module):
    def __init__(self, input_dim, d_model, feedforward_dim):
        super().__init__()
        self.encoder_layer = EncoderLayer(d_model=d_model, nhead=4, dim_feedforward=feedforward_dim)
        self.encoder = Encoder(self.encoder_layer, num_layers=2)
        self.affine_matrix = nn.Linear(input_dim, d_model)

    def forward(self, feature):
        return self.encoder(self.affine_matrix(feature))


class CrossModalRelationAttModule(nn.Module):
    def __init__(self, input_dim, d_model, feedforward_dim):
        super().__init__()
        self.decoder_layer = DecoderLayer(d_model=d_model, nhead=4, dim_feedforward=feedforward_dim)
        self.decoder = Encoder(self.decoder_layer, num_layers=1)
        self.affine_matrix = nn.Linear(input_dim, d_model)

    def forward(self, query, memory):
        return self.decoder(self.affine_matrix(query), memory)


class New_Audio_Guided_Attention(nn.Module):  # noqa: N801 (the authors' name)
    def __init__(self, beta, video_dim=512, audio_dim=128, hidden=256):
        super().__init__()
        self.beta = beta
        for name, (i, o) in {
            "affine_video_1": (video_dim, video_dim),
            "affine_audio_1": (audio_dim, video_dim),
            "affine_bottleneck": (video_dim, hidden),
            "affine_v_c_att": (hidden, video_dim),
            "affine_video_2": (video_dim, hidden),
            "affine_audio_2": (audio_dim, hidden),
            "affine_v_s_att": (hidden, 1),
            "video_query": (video_dim, video_dim // 4),
            "video_key": (video_dim, video_dim // 4),
            "video_value": (video_dim, video_dim),
            "affine_video_ave": (video_dim, hidden),
            "affine_video_3": (video_dim, hidden),
            "ave_bottleneck": (512, 256),
            "ave_v_att": (hidden, 1),
        }.items():
            setattr(self, name, nn.Linear(i, o))
        self.dropout = nn.Dropout(0.2)
        self.norm = nn.LayerNorm(video_dim)

    def forward(self, video, audio):
        # video [B, T, H, W, C]; audio [T, B, A] (time-first, as the authors pass it).
        audio = audio.transpose(1, 0)
        batch, steps, h, w, channels = video.size()
        audio = audio.reshape(batch * steps, -1)
        raw = video.reshape(batch, steps, -1, channels)
        query = self.video_query(raw).reshape(batch * steps, h * w, -1)
        key = self.video_key(raw).reshape(batch * steps, h * w, -1).permute(0, 2, 1)
        attention = torch.softmax(torch.bmm(query, key), dim=-1)
        value = self.video_value(raw).reshape(batch * steps, h * w, -1)
        out = torch.matmul(attention, value)
        visual = self.norm(raw.reshape(batch * steps, h * w, -1) + self.dropout(out))
        average = (visual.sum(dim=1) / (h * w)).reshape(batch * steps, channels)
        average = F.relu(self.affine_video_ave(average)).unsqueeze(-2)
        self_query = F.relu(self.affine_video_3(visual)) * average
        maps = torch.softmax(torch.tanh(self.ave_v_att(self_query)).transpose(2, 1), dim=-1)
        self_att = torch.bmm(maps, visual).reshape(batch, steps, channels)
        audio_query = F.relu(self.affine_audio_1(audio)).unsqueeze(-2)
        video_query = F.relu(self.affine_video_1(visual)).reshape(batch * steps, h * w, -1)
        joint = F.relu(self.affine_bottleneck((audio_query * video_query).mean(-2)))
        channel = self.affine_v_c_att(joint).sigmoid().reshape(batch, steps, -1, channels)
        c_att = (raw * (channel + 1)).reshape(batch * steps, -1, channels)
        c_query = F.relu(self.affine_video_2(c_att))
        audio_query = F.relu(self.affine_audio_2(audio)).unsqueeze(-2)
        maps = torch.softmax(
            torch.tanh(self.affine_v_s_att(c_query * audio_query)).transpose(2, 1), dim=-1
        )
        pooled = torch.bmm(maps, c_att).reshape(batch, steps, channels)
        return pooled + self.beta * self_att.sigmoid() * pooled


class RNNEncoder(nn.Module):
    def __init__(self, audio_dim, video_dim, d_model):
        super().__init__()
        self.audio_rnn = nn.LSTM(audio_dim, d_model // 2, batch_first=True, bidirectional=True)
        self.visual_rnn = nn.LSTM(video_dim, d_model, batch_first=True, bidirectional=True)

    def forward(self, audio, visual):
        return self.audio_rnn(audio)[0], self.visual_rnn(visual)[0]


class AudioVideoInter(nn.Module):
    def __init__(self, d_model, n_head, head_dropout=0.1):
        super().__init__()
        self.dropout = nn.Dropout(0.1)
        self.video_multihead = nn.MultiheadAttention(
            d_model, num_heads=n_head, dropout=head_dropout
        )
        self.norm1 = nn.LayerNorm(d_model)

    def forward(self, video, audio):
        joint = video * audio
        memory = torch.cat([audio, video], dim=0)
        return self.norm1(joint + self.dropout(self.video_multihead(joint, memory, memory)[0]))


class SupvLocalizeModule(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.classifier = nn.Linear(d_model, 1)
        self.event_classifier = nn.Linear(d_model, 28)

    def forward(self, fused):
        pooled, _ = fused.transpose(1, 0).max(1)
        return self.classifier(fused), self.event_classifier(pooled)


class CAS_Module(nn.Module):  # noqa: N801 (the authors' name)
    def __init__(self, d_model, num_class=28):
        super().__init__()
        self.classifier = nn.Sequential(nn.Conv1d(d_model, num_class + 1, 1, bias=False))

    def forward(self, content):
        return self.classifier(content.permute(0, 2, 1)).permute(0, 2, 1)


def top_k_mean(scores, k=4):
    """[B, T, C] -> [B, C]: the mean of each class's k largest scores over time (all if T < k)."""
    return torch.mean(scores.sort(descending=True, dim=1)[0][:, :k, :], dim=1)


def _gated(d_model):
    return nn.Sequential(nn.Linear(d_model, 1), nn.Sigmoid())


class supv_main_model(nn.Module):  # noqa: N801 (the authors' name)
    def __init__(self, config=FULL_CONFIG):
        super().__init__()
        d, v, a = config["d_model"], config["video_inputdim"], config["audio_inputdim"]
        self.alpha, self.gamma = config["alpha"], config["gamma"]
        self.spatial_channel_att = New_Audio_Guided_Attention(config["beta"])
        self.v_fc = nn.Linear(v, 512)
        self.dropout = nn.Dropout(0.2)
        self.video_encoder = InternalTemporalRelationModule(v, d, 1024)
        self.video_decoder = CrossModalRelationAttModule(v, d, 1024)
        self.audio_encoder = InternalTemporalRelationModule(d, d, 1024)
        self.audio_decoder = CrossModalRelationAttModule(d, d, 1024)
        self.audio_visual_rnn_layer = RNNEncoder(a, v, d)
        self.audio_gated = _gated(d)
        self.video_gated = _gated(d)
        self.AVInter = AudioVideoInter(d, n_head=4, head_dropout=0.2)
        self.VAInter = AudioVideoInter(d, n_head=4, head_dropout=0.2)
        self.localize_module = SupvLocalizeModule(d)
        self.video_norm = nn.LayerNorm(d)
        self.audio_norm = nn.LayerNorm(d)
        self.audio_cas = nn.Linear(d, 28)
        self.video_cas = nn.Linear(d, 28)

    def forward(self, visual_feature, audio_feature):
        audio_time_first = audio_feature.transpose(1, 0).contiguous()
        visual = self.dropout(F.relu(self.v_fc(visual_feature)))
        visual = self.spatial_channel_att(visual, audio_time_first)
        audio_rnn, visual_rnn = self.audio_visual_rnn_layer(audio_feature, visual)
        audio_in = audio_rnn.transpose(1, 0).contiguous()
        visual_in = visual_rnn.transpose(1, 0).contiguous()
        video_kv = self.video_encoder(visual_in)
        audio_query = self.audio_decoder(audio_in, video_kv)
        audio_kv = self.audio_encoder(audio_in)
        video_query = self.video_decoder(visual_in, audio_kv)
        audio_gate = self.audio_gated(audio_kv)
        video_gate = self.video_gated(video_kv)
        gate = audio_gate * video_gate
        video_query = video_query + audio_gate * video_query * self.alpha
        audio_query = audio_query + video_gate * audio_query * self.alpha
        score_video = top_k_mean(self.video_cas(video_query).permute(1, 0, 2))
        score_audio = top_k_mean(self.audio_cas(audio_query).permute(1, 0, 2))
        av_score = (score_video + score_audio) / 2
        video_query = self.AVInter(video_query, audio_query)
        audio_query = self.VAInter(audio_query, video_query)
        is_event, event = self.localize_module((video_query + audio_query) / 2)
        return is_event, event + self.gamma * av_score, gate, av_score


class weak_main_model(nn.Module):  # noqa: N801 (the authors' name)
    def __init__(self, config=WEAK_CONFIG):
        super().__init__()
        d, v, a = config["d_model"], config["video_inputdim"], config["audio_inputdim"]
        self.alpha, self.gamma = config["alpha"], config["gamma"]
        self.spatial_channel_att = New_Audio_Guided_Attention(config["beta"])
        self.v_fc = nn.Linear(v, v)
        self.dropout = nn.Dropout(0.1)
        self.video_encoder = InternalTemporalRelationModule(v, d, 2048)
        self.video_decoder = CrossModalRelationAttModule(v, d, 1024)
        self.audio_encoder = InternalTemporalRelationModule(a, d, 2048)
        self.audio_decoder = CrossModalRelationAttModule(a, d, 1024)
        self.AVInter = AudioVideoInter(d, n_head=2, head_dropout=0.2)
        self.VAInter = AudioVideoInter(d, n_head=2, head_dropout=0.2)
        self.audio_gated = _gated(d)
        self.video_gated = _gated(d)
        self.CAS_model = CAS_Module(d, num_class=28)
        self.classifier = nn.Linear(d, 1)
        self.audio_cas = nn.Linear(d, 29)
        self.video_cas = nn.Linear(d, 29)

    def forward(self, visual_feature, audio_feature):
        audio = audio_feature.transpose(1, 0).contiguous()
        visual = self.dropout(F.relu(self.v_fc(visual_feature)))
        visual = self.spatial_channel_att(visual, audio).transpose(1, 0).contiguous()
        video_kv = self.video_encoder(visual)
        audio_query = self.audio_decoder(audio, video_kv)
        audio_kv = self.audio_encoder(audio)
        video_query = self.video_decoder(visual, audio_kv)
        audio_gate = self.audio_gated(video_kv)
        video_gate = self.video_gated(audio_kv)
        gate = ((audio_gate + video_gate) / 2).permute(1, 0, 2)
        video_query = (1 - self.alpha) * video_query + audio_gate * video_query * self.alpha
        audio_query = (1 - self.alpha) * audio_query + video_gate * audio_query * self.alpha
        video_cas_gate = self.video_cas(video_query).permute(1, 0, 2).sigmoid()
        audio_cas_gate = self.audio_cas(audio_query).permute(1, 0, 2).sigmoid()
        video_query = self.AVInter(video_query, audio_query)
        audio_query = self.VAInter(audio_query, video_query)
        cas = self.CAS_model(((video_query + audio_query) / 2).transpose(0, 1))
        cas = self.gamma * video_cas_gate * cas + self.gamma * audio_cas_gate * cas
        raw_logits = top_k_mean(cas)[:, None, :]
        logits, _ = torch.max(gate * raw_logits, dim=1)
        return gate.squeeze(-1), raw_logits.squeeze(1), torch.softmax(logits, dim=-1)
