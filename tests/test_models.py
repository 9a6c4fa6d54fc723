"""The timm factory: every config alias builds, typos get suggestions, and the offline
EfficientNet-Lite0 weights really are ImageNet weights (they recognise skimage's cat)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from astro_exp.config import conf_options, timm_norm
from astro_exp.errors import ConfigError
from astro_exp.models import MODEL_ALIASES, create_model
from astro_exp.models import pretrained as pretrained_mod
from astro_exp.models.pretrained import OFFLINE_WEIGHTS, load_offline_imagenet, offline_weights_path

LITE0 = "tf_efficientnet_lite0"
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _package_state() -> OrderedDict[str, torch.Tensor]:
    return torch.load(offline_weights_path(LITE0), map_location="cpu", weights_only=True)


def _chelsea_224() -> torch.Tensor:
    """skimage's cat, resized to 224x224 and normalised the way the packaged weights expect."""
    from skimage.data import chelsea

    x = torch.from_numpy(chelsea()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(timm_norm(LITE0, "mean")).view(1, 3, 1, 1)
    std = torch.tensor(timm_norm(LITE0, "std")).view(1, 3, 1, 1)
    return (x - mean) / std


@pytest.mark.parametrize("alias", sorted(MODEL_ALIASES))
def test_every_alias_builds_and_gives_logits(alias: str) -> None:
    torch.manual_seed(0)
    model = create_model(MODEL_ALIASES[alias], num_classes=4, img_size=64).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()


@pytest.mark.parametrize("option", conf_options("model"))
def test_every_model_option_normalises_as_its_pretrained_weights_expect(
    option: str, make_cfg
) -> None:
    """``model=<option> model.pretrained=true``: preprocess normalises the way timm's
    pretrained_cfg (in timm's registry: no network) says the weights were trained."""
    from timm.models import get_pretrained_cfg

    cfg = make_cfg([f"model={option}", "model.pretrained=true"])
    pretrained = get_pretrained_cfg(cfg.model.model_name)
    assert MODEL_ALIASES[option] == cfg.model.model_name
    for key in ("mean", "std"):
        want = [float(v) for v in getattr(pretrained, key)]
        assert list(cfg.model[key]) == want, (option, key)
        assert list(cfg.preprocess[key]) == want, (option, key)


@pytest.mark.parametrize("option", conf_options("model"))
def test_every_model_option_names_the_input_size_of_its_pretrained_weights(
    option: str, make_cfg
) -> None:
    """``model.input_size`` is the side of the pictures timm's pretrained_cfg (its registry:
    no network) says the weights were trained at; it is no timm keyword, so a bundle made
    from the composed group still rebuilds."""
    from timm.models import get_pretrained_cfg

    from astro_exp.models.checkpoint import make_bundle, model_from_bundle

    cfg = make_cfg([f"model={option}"])
    _, height, width = get_pretrained_cfg(cfg.model.model_name).input_size
    assert cfg.model.input_size == height == width, option
    if option == "tiny":
        model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
        bundle = make_bundle(
            create_model(cfg.model.model_name, 2),
            model_cfg=model_cfg,
            classes=["a", "b"],
            task="multiclass",
            preprocess={},
            image_size=32,
        )
        assert isinstance(model_from_bundle(bundle), torch.nn.Module)


def test_img_size_reaches_vit_and_cnns_ignore_it() -> None:
    vit = create_model("vit_tiny_patch16_224", num_classes=4, img_size=64)
    assert vit.pos_embed.shape[1] == 1 + (64 // 16) ** 2  # class token + 4x4 patches
    cnn = create_model("test_resnet", num_classes=4, img_size=64, drop_rate=0.1)
    assert cnn.get_classifier().out_features == 4


def test_unknown_name_suggests_close_timm_names() -> None:
    with pytest.raises(ConfigError) as info:
        create_model("resnet181", num_classes=4)
    message = str(info.value)
    assert "\n" not in message and "resnet18," in message and "timm.list_models()" in message


def test_config_alias_is_not_a_timm_name() -> None:
    with pytest.raises(ConfigError, match=r"model\.model_name=resnet18"):
        create_model("resnet", num_classes=4)


def test_bad_kwarg_is_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="drop_rat") as info:
        create_model("test_resnet", num_classes=4, drop_rat=0.1)
    assert "\n" not in str(info.value)


def test_failed_download_is_one_line_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub.constants as hf

    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)  # fail at once instead of retrying for ~45 s
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path))  # ignore any locally cached weights
    with pytest.raises(
        ConfigError, match=r"could not download pretrained weights for test_resnet"
    ) as info:
        create_model("test_resnet", num_classes=4, pretrained=True)
    assert "\n" not in str(info.value) and "efficientnet_lite0" in str(info.value)


@pytest.mark.parametrize("model_name", sorted(OFFLINE_WEIGHTS))
def test_offline_weights_rank_chelsea_as_a_cat(model_name: str) -> None:
    model = create_model(model_name, num_classes=1000, pretrained=True).eval()
    with torch.no_grad():
        probs = model(_chelsea_224()).softmax(-1)[0]
    top = probs.topk(5)
    assert int(top.indices[0]) in IMAGENET_CATS
    assert float(top.values[0]) > 0.5  # confident, not a lucky argmax
    assert float(probs[list(IMAGENET_CATS)].sum()) > 0.9


def test_pretrained_lite0_keeps_backbone_and_gets_new_head() -> None:
    package = _package_state()
    model = create_model("tf_efficientnet_lite0", num_classes=4, pretrained=True)
    assert torch.equal(model.conv_stem.weight, package["_conv_stem.weight"])
    assert torch.equal(model.conv_head.weight, package["_conv_head.weight"])
    assert model.get_classifier().out_features == 4
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 4)


def test_pretrained_lite0_adapts_stem_to_one_channel() -> None:
    model = create_model("tf_efficientnet_lite0", num_classes=4, pretrained=True, in_chans=1)
    rgb = _package_state()["_conv_stem.weight"]
    assert torch.allclose(model.conv_stem.weight, rgb.sum(dim=1, keepdim=True))


def test_loader_pairs_tensors_when_bn_counters_are_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    state = OrderedDict(
        (k, v) for k, v in _package_state().items() if not k.endswith("num_batches_tracked")
    )
    monkeypatch.setattr(pretrained_mod.torch, "load", lambda *a, **k: state)
    model = create_model("tf_efficientnet_lite0", num_classes=1000)
    load_offline_imagenet(model, LITE0)
    assert torch.equal(model.classifier.weight, state["_fc.weight"])
    assert torch.equal(model.bn2.running_var, state["_bn1.running_var"])


def test_loader_rejects_other_architectures() -> None:
    with pytest.raises(ConfigError, match="tf_efficientnet_lite0"):
        load_offline_imagenet(create_model("test_resnet", num_classes=1000), LITE0)
