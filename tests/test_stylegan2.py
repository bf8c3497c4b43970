import math

import pytest
import torch
import torch.nn.functional as F

from gankd.nets import Discriminator, Generator, StyleGAN2Config
from gankd.nets.layers import ModulatedConv2d, NoiseInjection, make_kernel, minibatch_stddev, upfirdn2d


def small(res, **kw):
    return StyleGAN2Config(resolution=res, z_dim=32, w_dim=32, n_mlp=2, channel_base=64 * res if res < 256 else 2048,
                           channel_max=64, **kw)


@pytest.mark.parametrize("res", [8, 32, 256])
def test_shapes_and_feature_taps(res):
    torch.manual_seed(0)
    cfg = small(res)
    G, D = Generator(cfg), Discriminator(cfg)
    img, feats = G(torch.randn(2, 32), return_features=True)
    assert img.shape == (2, 3, res, res)
    assert list(feats) == [f"b{2 ** r}" for r in range(2, int(math.log2(res)) + 1)]
    assert all(f.shape[-1] == int(name[1:]) and f.shape[1] == cfg.channels(int(name[1:])) for name, f in feats.items())
    logits, dfeats = D(img, return_features=True)
    assert logits.shape == (2, 1)
    assert list(dfeats) == D.block_names
    assert dfeats["phi"].shape == (2, cfg.channels(4)) and dfeats["b4"].shape[-1] == 4
    assert torch.equal(D(img), logits)


def test_mapping_depth_and_parameter_names_follow_rosinality():
    G, D = Generator(small(32)), Discriminator(small(32))
    names = set(G.state_dict())
    for key in ("style.1.weight", "input.input", "conv1.conv.weight", "conv1.conv.modulation.bias",
                "conv1.noise.weight", "conv1.activate.bias", "to_rgb1.bias", "convs.0.conv.weight",
                "to_rgbs.2.conv.weight", "noises.noise_6"):
        assert key in names
    assert G.state_dict()["convs.0.conv.weight"].shape == (1, 64, 64, 3, 3)
    dnames = set(D.state_dict())
    assert {"convs.0.0.weight", "convs.1.conv2.1.weight", "final_conv.0.weight", "final_linear.1.weight"} <= dnames


def grouped_reference(conv, x, style):
    """Modulated conv written the textbook way: a per-sample weight and a grouped convolution."""
    b, c, h, w = x.shape
    s = conv.modulation(style).view(b, 1, c, 1, 1)
    weight = conv.scale * conv.weight * s
    if conv.demodulate:
        weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + 1e-8)
    weight = weight.view(b * conv.out_channels, c, conv.kernel_size, conv.kernel_size)
    x = x.reshape(1, b * c, h, w)
    if conv.upsample:
        weight = weight.view(b, conv.out_channels, c, *weight.shape[-2:]).transpose(1, 2).reshape(
            b * c, conv.out_channels, *weight.shape[-2:])
        out = F.conv_transpose2d(x, weight, stride=2, groups=b)
        return conv.blur(out.view(b, conv.out_channels, *out.shape[-2:]))
    out = F.conv2d(x, weight, padding=conv.padding, groups=b)
    return out.view(b, conv.out_channels, *out.shape[-2:])


@pytest.mark.parametrize("upsample", [False, True])
def test_non_grouped_modconv_equals_grouped(upsample):
    torch.manual_seed(1)
    conv = ModulatedConv2d(8, 6, 3, 16, upsample=upsample)
    x, style = torch.randn(3, 8, 8, 8), torch.randn(3, 16)
    assert torch.allclose(conv(x, style), grouped_reference(conv, x, style), atol=1e-5)


def test_fir_filters():
    ones = torch.ones(1, 2, 8, 8)
    up = upfirdn2d(ones, make_kernel([1, 3, 3, 1]) * 4, up=2, pad=(2, 1))
    assert up.shape == (1, 2, 16, 16) and torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12))
    down = upfirdn2d(ones, make_kernel([1, 3, 3, 1]), down=2, pad=(1, 1))
    assert down.shape == (1, 2, 4, 4) and torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))


def test_minibatch_stddev():
    x = torch.randn(8, 4, 2, 2)
    y = minibatch_stddev(x, group_size=4)
    expected = x.view(4, 2, 4, 2, 2).var(0, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
    assert torch.allclose(y[:, 4, 0, 0], expected.repeat(4), atol=1e-6)


def test_truncation_noise_and_conditioning():
    torch.manual_seed(0)
    G = Generator(small(16)).eval()
    G.estimate_w_avg(256)
    z = torch.randn(3, 32)
    a = G(z, truncation_psi=0, noise_mode="const")
    assert torch.allclose(a[0], a[1], atol=1e-5)  # psi = 0: every sample is the average
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    for module in G.modules():
        if isinstance(module, NoiseInjection):
            module.weight.data.fill_(0.5)  # noise strengths start at zero, as in StyleGAN2
    assert not torch.equal(G(z, noise_mode="none"), G(z, noise_mode="const"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    cfg = small(16, c_dim=5)
    Gc, Dc = Generator(cfg), Discriminator(cfg)
    c = torch.eye(5)[:4]
    img = Gc(torch.randn(4, 32), c)
    logits = Dc(img, c)
    assert logits.shape == (4, 1) and not torch.allclose(logits, Dc(img, c.roll(1, 0)))
    with pytest.raises(ValueError, match="conditional"):
        Gc(torch.randn(4, 32))


def test_config_validation():
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Config(resolution=48)
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Config(resolution=4)
    assert StyleGAN2Config(resolution=1024).channels(1024) == 32  # rosinality's channel_multiplier=2 table
    assert StyleGAN2Config.from_dict(small(32).to_dict()) == small(32)
