"""`gankd serve`: the API answers each family's actions with the images the commands make, bad
requests with one-line JSON errors; the page itself, driven in a real browser (chromium)."""

import base64
import io
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from gankd.checkpoint import load_checkpoint, save_checkpoint
from gankd.images import to_uint8
from gankd.nets import Generator, PatchDiscriminator, StyleGAN2Config, TranslationConfig, Translator
from gankd.nets.aging import AgingConfig, AgingGenerator
from gankd.serve import listening_socket, server, url_of
from gankd.serve.app import make_app
from gankd.serve.models import load_models

CHROMIUM = os.environ.get("GANKD_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Tiny untrained CycleGAN (both directions), aging and conditional StyleGAN2 checkpoints, 16 px."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("serve")
    cfg = TranslationConfig(resolution=16, generator="resnet_6blocks", ngf=4, ndf=4, d_layers=2, norm="instance",
                            dropout=False, d_input="single")
    save_checkpoint(folder / "cyclegan.safetensors", {"G_AB": Translator(cfg), "G_BA": Translator(cfg),
                                                       "D_A": PatchDiscriminator(cfg), "D_B": PatchDiscriminator(cfg)})
    aging = AgingConfig(resolution=16, ngf=4, enc_blocks=1, dec_blocks=2, d_layers=2, min_age=10, max_age=20,
                        age_step=2.5, inject="concat")  # modulated blocks start plain: the age acts once trained
    save_checkpoint(folder / "aging.safetensors", {"G": AgingGenerator(aging)})
    conditional = StyleGAN2Config(resolution=16, z_dim=32, w_dim=32, n_mlp=2, channel_base=256, channel_max=32, c_dim=3)
    save_checkpoint(folder / "conditional.safetensors", {"G": Generator(conditional)})
    return {name: str(folder / f"{name}.safetensors") for name in ("cyclegan", "aging", "conditional")}


@pytest.fixture(scope="module")
def client(ckpts):
    return TestClient(make_app(load_models(["builtin:emoji32", ckpts["cyclegan"], ckpts["aging"], ckpts["conditional"]],
                                           "cpu")))


def pixels(answer) -> np.ndarray:
    """The image of an answer: its PNG data URL decoded."""
    head, _, data = answer["image"].partition(",")
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def png_text(width: int, height: int, seed: int = 0) -> str:
    """A random RGB PNG as base64 text, as the page uploads it."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_samples_are_generate_s_images_and_follow_seed_truncation_and_blend(client):
    from gankd.generate import sample

    def image(**fields):
        response = client.post("/api/models/0/sample", json=fields)
        assert response.status_code == 200, response.text
        return pixels(response.json()).astype(int)

    three = image(seed=3, truncation=0.7)
    assert three.shape == (32, 32, 3)
    np.testing.assert_array_equal(three, sample("builtin:emoji32", [3], truncation=0.7)[0])  # as gankd generate
    np.testing.assert_array_equal(three, image(seed=3, truncation=0.7))
    assert np.abs(three - image(seed=4, truncation=0.7)).mean() > 5
    assert np.abs(three - image(seed=3, truncation=0.2)).mean() > 5
    four = image(seed=4, truncation=0.7)
    assert np.abs(image(seed=3, truncation=0.7, toward=4, t=1) - four).max() <= 1  # w of 4, up to rounding
    halfway = image(seed=3, truncation=0.7, toward=4, t=0.5)
    assert min(np.abs(halfway - three).mean(), np.abs(halfway - four).mean()) > 2


def test_each_family_lists_its_controls_and_answers_uploads(client, ckpts):
    from gankd.families.aging import render
    from gankd.generate import sample
    from gankd.families.translation import translate
    from gankd.serve.models import decoded

    listed = client.get("/api/models").json()["models"]
    assert [(m["family"], m["actions"]) for m in listed] == [
        ("latent", ["sample", "project"]), ("translation", ["translate"]), ("aging", ["age"]),
        ("latent", ["sample", "project"])]
    assert listed[1]["directions"] == ["ab", "ba"] and listed[2]["range"] == [10, 20]
    assert (listed[0]["classes"], listed[3]["classes"]) == (0, 3)

    first, second = (pixels(client.post("/api/models/3/sample", json={"seed": 1, "class_index": k}).json())
                     for k in (0, 1))
    np.testing.assert_array_equal(first, sample(ckpts["conditional"], [1], class_index=0)[0])
    assert first.shape == (16, 16, 3) and (first != second).any()

    upload = png_text(40, 30)
    ab = client.post("/api/models/1/translate", json={"image": upload}).json()
    ba = client.post("/api/models/1/translate", json={"image": "data:image/png;base64," + upload, "direction": "ba"})
    assert pixels(ab).shape == (16, 16, 3) and np.abs(pixels(ab).astype(int) - pixels(ba.json())).mean() > 1
    G = load_checkpoint(listed[1]["name"]).network("G_AB")  # as gankd translate runs it
    np.testing.assert_array_equal(pixels(ab), to_uint8(translate(G, decoded(base64.b64decode(upload), 3, 16)))[0])

    young, old = (client.post("/api/models/2/age", json={"image": upload, "value": v}).json() for v in (10, 20))
    assert pixels(young).shape == (16, 16, 3) and (pixels(young) != pixels(old)).any()
    G = load_checkpoint(listed[2]["name"]).network("G")  # as gankd age renders it
    aged = render(G, decoded(base64.b64decode(upload), 3, 16), torch.tensor([20.0]))[:, 0]
    np.testing.assert_array_equal(pixels(old), to_uint8(aged)[0])
    assert young["value"] == 10 and 10 <= young["estimate"] <= 20

    projected = client.post("/api/models/0/project", json={"image": png_text(64, 64), "steps": 5}).json()
    before, after = projected["pixel_l1"]
    assert pixels(projected).shape == (32, 32, 3) and after < before


@pytest.mark.parametrize("path, body, status, said", [
    ("0/sample", {"seed": -1}, 400, "seed must be in 0..4294967295, got -1"),
    ("0/sample", {"seed": "7"}, 400, "'seed' must be an integer"),
    ("0/sample", {"truncation": 0.5}, 400, "missing field 'seed'"),
    ("0/sample", {"seed": 1, "truncation": 5}, 400, "truncation must be in 0..2"),
    ("0/sample", {"seed": 1, "toward": 2, "t": 1.5}, 400, "t must be in 0..1"),
    ("0/sample", b"seed=1", 400, "not JSON"),
    ("0/translate", {}, 404, "(latent family) cannot translate; it can sample or project"),
    ("9/sample", {"seed": 1}, 404, "no model '9': there are 4"),
    ("3/sample", {"seed": 1}, 400, "this generator is conditional (3 classes): pass --class"),
    ("1/translate", {"image": "***"}, 400, "'image' is not valid base64"),
    ("1/translate", {"image": base64.b64encode(b"not an image").decode()}, 400, "the uploaded image"),
    ("1/translate", {"image": png_text(8, 8), "direction": "ca"}, 400, "direction must be one of ab, ba"),
    ("2/age", {"image": png_text(8, 8), "value": 30}, 400, "value must be in 10..20"),
])
def test_bad_requests_are_one_line_json_errors(client, path, body, status, said):
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = client.post(f"/api/models/{path}", **sent)
    assert response.status_code == status
    error = response.json()["error"]
    assert said in error and "\n" not in error, error


def test_a_bad_checkpoint_or_a_busy_port_is_one_line_before_serving(run_cli, tmp_path):
    code, out, err = run_cli("serve", "builtin:emoji32", tmp_path / "missing.safetensors", "--port", "0")
    assert code == 2 and "missing.safetensors: no such checkpoint file" in err and len(err.strip().splitlines()) == 1
    assert "serving" not in out
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, out, err = run_cli("serve", "builtin:emoji32", "--port", port, "--device", "cpu")
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "serving" not in out


@contextmanager
def serving(models):
    """The viewer of `models` on a free port in a background thread; yields its URL."""
    sock = listening_socket("127.0.0.1", 0)
    viewer = server(make_app(models))
    thread = threading.Thread(target=viewer.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not viewer.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert viewer.started, "the server did not start"
        yield url_of(sock)
    finally:
        viewer.should_exit = True
        thread.join(10)
        sock.close()


def browser_or_skip():
    """Playwright's chromium on the system's executable; skipped where there is none, unless
    GANKD_REQUIRE_BROWSER=1 (CI), where that is a failure."""
    why = None if Path(CHROMIUM).is_file() else f"no chromium at {CHROMIUM} (set GANKD_CHROMIUM)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "playwright is not installed"
    if why:
        if os.environ.get("GANKD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"GANKD_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    return sync_playwright


def test_the_page_in_a_real_browser(ckpts, tmp_path):
    sync_playwright = browser_or_skip()
    upload = tmp_path / "upload.png"
    upload.write_bytes(base64.b64decode(png_text(24, 24)))
    with serving(load_models(["builtin:emoji32", ckpts["cyclegan"]], "cpu")) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            errors = []
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.wait_for_function("document.getElementById('sample-image').src.startsWith('data:image/png')")
            first = page.get_attribute("#sample-image", "src")
            assert page.is_visible("#truncation") and not page.is_visible("#direction")
            page.fill("#truncation", "0.3")  # a range input: fill sets its value and fires input
            page.wait_for_function(f"document.getElementById('sample-image').src !== {first!r}")
            assert page.eval_on_selector("#sample-image", "img => img.naturalWidth") == 32
            assert page.text_content("#truncation-value") == "0.30"
            page.click("#random")
            page.wait_for_function("document.getElementById('sample-caption').textContent !== 'seed 0'")

            page.select_option("#model", "1")  # the CycleGAN: only its controls
            assert page.is_visible("#direction") and not page.is_visible("#truncation")
            assert page.eval_on_selector_all("#direction option", "os => os.map(o => o.value)") == ["ab", "ba"]
            page.set_input_files("#translate-file", str(upload))
            page.wait_for_function("document.getElementById('translate-image').src.startsWith('data:image/png')")
            assert page.eval_on_selector("#translate-image", "img => img.naturalWidth") == 16
            assert page.text_content("#status") == ""
        finally:
            browser.close()
    assert errors == []
