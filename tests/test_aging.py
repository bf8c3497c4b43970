"""The continuous aging network: the aging basis is the estimator's rows, the personalised
residual makes the estimated age the identity path, the estimate is differentiable."""

import pytest
import torch

from gankd.nets.aging import AgingConfig, AgingGenerator


def net(**settings) -> AgingGenerator:
    torch.manual_seed(0)
    cfg = AgingConfig(**{"resolution": 16, "ngf": 4, "enc_blocks": 1, "dec_blocks": 2, "min_age": 10, "max_age": 20,
                         "age_step": 2.5, **settings})
    return AgingGenerator(cfg)


def test_the_basis_is_the_estimators_rows_and_interpolates_between_them():
    G = net()
    W = G.estimator.weight
    assert G.cfg.classes == 5 and torch.equal(G.ages, torch.tensor([10, 12.5, 15, 17.5, 20]))
    assert torch.equal(G.basis(G.ages), W)  # exactly the rows at the class ages
    mid = G.basis(torch.tensor([11.25, 18.75]))
    assert torch.allclose(mid, torch.stack([(W[0] + W[1]) / 2, (W[3] + W[4]) / 2]))
    assert torch.equal(G.basis(torch.tensor([0.0, 99.0])), W[[0, 4]])  # outside the range: the end rows


def test_hard_residual_makes_the_estimated_age_the_identity_path():
    G = net(residual="hard")
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    _, parts = G(x, torch.tensor([10.0, 15.0, 20.0]), return_parts=True)
    e_hat = G.embedding(parts["v"], parts["logits"], parts["estimate"], parts["estimate"])
    assert torch.allclose(e_hat, parts["v"], atol=1e-6)  # e_ŷ = v: the input's own embedding
    s, t = torch.tensor([11.0, 13.0, 19.0]), torch.tensor([17.0, 12.0, 10.0])
    for residual in ("hard", "soft"):  # any residual: moving the target moves e along the basis only
        G2 = net(residual=residual)
        _, p = G2(x, s, return_parts=True)
        e_s, e_t = (G2.embedding(p["v"], p["logits"], p["estimate"], a) for a in (s, t))
        assert torch.allclose(e_t - e_s, G2.basis(t) - G2.basis(s), atol=1e-6)
    G3 = net(residual="none")
    _, p = G3(x, t, return_parts=True)
    assert torch.allclose(p["e"], G3.basis(t))  # the ablation: e_t = a(t), no person in it


def test_the_estimate_is_a_differentiable_expectation():
    G = net()
    v = torch.randn(2, G.cfg.embed_dim, dtype=torch.float64, requires_grad=True)
    G = G.double()
    assert torch.autograd.gradcheck(lambda u: G.estimate(u)[1], (v,))
    logits, estimate = G.estimate(v)
    assert torch.allclose(estimate, (logits.softmax(1) * G.ages).sum(1))
    assert ((G.cfg.min_age <= estimate) & (estimate <= G.cfg.max_age)).all()
    x = (torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    G(x, torch.tensor([12.0, 18.0], dtype=torch.float64), return_parts=True)[1]["estimate"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("inject", ["modulate", "concat"])
def test_outputs_have_the_inputs_shape_and_follow_the_target(inject):
    G = net(inject=inject)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    young, old = G(x, torch.tensor([10.0, 10.0])), G(x, torch.tensor([20.0, 20.0]))
    assert young.shape == x.shape and young.abs().max() <= 1
    if inject == "concat":  # the modulated blocks start as plain ones (γ = β = 0): the target acts once trained
        assert not torch.allclose(young, old)


def test_bad_settings_are_named():
    for settings, said in (({"residual": "x"}, "residual must be one of"), ({"min_age": 100}, "max_age > min_age"),
                           ({"age_step": 0}, "age_step > 0"), ({"resolution": 24}, "power of two")):
        with pytest.raises(ValueError, match=said):
            AgingConfig(**settings)
