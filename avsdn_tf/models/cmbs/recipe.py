"""CMBS's constants: the authors' architecture sizes and training recipes (marmot-xy/CMBS).

Read from their model/main_model.py, configs/main.json (full supervision), configs/weak.json
(weak supervision), supv_train.sh / weakly_train.sh and supv_main.py / weakly_main.py.
Constants only, grouped; each with its unit.
"""

# Supervision variants (the authors' two model classes).
FULL = "full"  # supv_main_model, trained on segment labels
WEAK = "weak"  # weak_main_model, trained on the video label
SUPERVISIONS = (FULL, WEAK)

# Inputs: the AVE release's features, raw (the authors' models see no normalisation).
AUDIO_DIM = 128  # VGGish embedding, units per segment
VISUAL_SHAPE = (7, 7, 512)  # VGG-19 pool5 map per segment (height, width, channels)
NUM_EVENT_CLASSES = 28  # event categories; label 28 is background
NUM_CLASSES = 29  # event categories + background

# Architecture, both variants.
VISUAL_FC_UNITS = 512  # units of the visual linear layer (v_fc) before the attention
D_MODEL = 256  # units of the relation encoders, decoders and interaction blocks
ATTENTION_HIDDEN_UNITS = 256  # hidden units of the spatial-channel attention
ATTENTION_LATENT_RATIO = 4  # region self-attention query/key units = channels / this
ATTENTION_DROPOUT = 0.2  # dropout rate inside the spatial-channel attention
ENCODER_HEADS = 4  # attention heads of the relation encoder / decoder layers
ENCODER_LAYERS = 2  # layers of each relation encoder (InternalTemporalRelationModule)
DECODER_LAYERS = 1  # layers of each cross-modal decoder (CrossModalRelationAttModule)
TRANSFORMER_DROPOUT = 0.1  # dropout rate of the encoder / decoder layers
DECODER_FEEDFORWARD_UNITS = 1024  # feed-forward units of the cross-modal decoders
INTERACTION_DROPOUT = 0.1  # dropout rate after the audio-visual interaction attention
INTERACTION_ATTENTION_DROPOUT = 0.2  # dropout rate on the interaction attention weights
TOP_K = 4  # segments averaged per class for the event-level score (min(TOP_K, T) used)

# Architecture, full supervision (supv_main_model, configs/main.json).
FULL_ALPHA = 0.1  # time-level suppression strength (x + alpha * gate * x)
FULL_BETA = 0.4  # weight of the self-attention term in the spatial-channel attention
FULL_GAMMA = 0.3  # weight of av_score added to the event class logits
FULL_VISUAL_DROPOUT = 0.2  # dropout rate after the visual linear layer
FULL_AUDIO_LSTM_UNITS = 128  # units per direction of the audio BiLSTM (256 out)
FULL_VISUAL_LSTM_UNITS = 256  # units per direction of the visual BiLSTM (512 out)
FULL_ENCODER_FEEDFORWARD_UNITS = 1024  # feed-forward units of the relation encoders
FULL_INTERACTION_HEADS = 4  # heads of the audio-visual interaction blocks

# Architecture, weak supervision (weak_main_model, configs/weak.json): no LSTM.
WEAK_ALPHA = 0.2  # time-level suppression ((1 - alpha) * x + alpha * gate * x)
WEAK_BETA = 0.5  # weight of the self-attention term in the spatial-channel attention
WEAK_GAMMA = 0.5  # weight of each modality's class-activation gate
WEAK_VISUAL_DROPOUT = 0.1  # dropout rate after the visual linear layer
WEAK_ENCODER_FEEDFORWARD_UNITS = 2048  # feed-forward units of the relation encoders
WEAK_INTERACTION_HEADS = 2  # heads of the audio-visual interaction blocks

# Training recipe, full supervision (supv_train.sh, supv_main.py).
FULL_LEARNING_RATE = 7e-4  # Adam, per step
FULL_BATCH_SIZE = 64  # videos per step
FULL_EPOCHS = 200  # epochs
FULL_LR_MILESTONES = (10, 20, 30)  # epochs after which the learning rate is multiplied
FULL_LR_DECAY = 0.5  # factor at each milestone (MultiStepLR gamma)
FULL_CLIP_NORM = 0.5  # global gradient-norm clipping threshold

# Training recipe, weak supervision (weakly_train.sh, weakly_main.py).
WEAK_LEARNING_RATE = 6e-4  # Adam, per step
WEAK_BATCH_SIZE = 64  # videos per step
WEAK_EPOCHS = 200  # epochs
WEAK_LR_MILESTONES = (10, 20, 40)  # epochs after which the learning rate is multiplied
WEAK_LR_DECAY = 0.5  # factor at each milestone (MultiStepLR gamma)
WEAK_CLIP_NORM = 0.5  # global gradient-norm clipping threshold
WEAK_TRAIN_WITH_BACKGROUND_VIDEOS = True  # the release's background-only videos join training

# Decoding.
EVENT_THRESHOLD = 0.5  # a segment is an event where sigmoid(is_event logit) > this
