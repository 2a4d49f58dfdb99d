# mypy: disallow-untyped-calls=False
# (diffusers ships no annotations on its model constructors: this builder calls them by design)
"""Tiny random-weight diffusers pipelines, built in memory and saved as model folders (tokenizers included).

They exercise the real loading and inference code offline. Their output is noise: a test fixture, never a
product. Configs follow diffusers' own test configs, with the VAEs keeping the real geometry (x8 spatial for
SD/FLUX/Wan, so sizes round like the real models)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_WORDS = ("a", "cat", "dog", "boat", "storm", "night", "waves", "paper", "pond", "lighthouse", "red", "sky")


def _clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in (*chars, *(c + "</w>" for c in chars), *(w + "</w>" for w in _WORDS)):
        vocab.setdefault(token, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _t5_tokenizer() -> Any:
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [("▁" + w, -5.0) for w in _WORDS]
    vocab += [(chr(c), -8.0) for c in range(ord("a"), ord("z") + 1)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def _clip_text() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=128,
        projection_dim=32,
    )
    return CLIPTextModel(config)


def _t5_config(**extra: Any) -> dict[str, Any]:
    return {"vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 2, "num_heads": 4, **extra}


def _kl_vae(channels: int, latent: int, **extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(channels,) * 4,  # 4 blocks: the real x8 latent geometry
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent,
        layers_per_block=1,
        norm_num_groups=channels // 2,
        sample_size=64,
        **extra,
    )


def build_sd() -> Any:
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=4,
        attention_head_dim=4,
    )
    return StableDiffusionPipeline(
        vae=_kl_vae(8, 4),
        text_encoder=_clip_text(),
        tokenizer=_clip_tokenizer(),
        unet=unet,
        scheduler=EulerAncestralDiscreteScheduler(timestep_spacing="trailing", steps_offset=1),  # SD-Turbo's
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_flux() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_kl_vae(
            8, 4, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.06, scaling_factor=1.5
        ),
        text_encoder=_clip_text(),
        tokenizer=_clip_tokenizer(),
        text_encoder_2=T5EncoderModel(T5Config(**_t5_config())),
        tokenizer_2=_t5_tokenizer(),
        transformer=transformer,
    )


def _wan_parts(in_channels: int) -> dict[str, Any]:
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,  # the upstream test's 32 breaks above ~512 px
    )
    return {
        "transformer": transformer,
        "vae": AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        ),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=7.0),
        "text_encoder": UMT5EncoderModel(UMT5Config(**_t5_config())),
        "tokenizer": _t5_tokenizer(),
    }


def build_wan_t2v() -> Any:
    from diffusers import WanPipeline

    return WanPipeline(**_wan_parts(16))


def build_wan_i2v() -> Any:
    from diffusers import WanImageToVideoPipeline

    # Wan 2.2 I2V style: the first (and last) frame go in as latents (16 + 4 mask + 16), no CLIP encoder.
    return WanImageToVideoPipeline(**_wan_parts(36), image_processor=None, image_encoder=None)


def build_ltx_i2v() -> Any:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),  # else the decoder keeps its 237M-parameter defaults
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    return LTXImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=T5EncoderModel(T5Config(**_t5_config())),
        tokenizer=_t5_tokenizer(),
        transformer=transformer,
    )


BUILDERS: dict[str, Callable[[], Any]] = {
    "sd": build_sd,
    "flux": build_flux,
    "wan_t2v": build_wan_t2v,
    "wan_i2v": build_wan_i2v,
    "ltx_i2v": build_ltx_i2v,
}


def save_all(root: Path, names: tuple[str, ...] = tuple(BUILDERS)) -> dict[str, Path]:
    """Build each tiny pipeline (seeded) and save it as a model folder under `root`."""
    import torch

    folders = {}
    for name in names:
        torch.manual_seed(0)
        folder = root / name
        if not (folder / "model_index.json").exists():
            BUILDERS[name]().save_pretrained(folder)
        folders[name] = folder
    return folders
