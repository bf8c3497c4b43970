import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gankd.config import resolve
from gankd.data import ImageDataset, open_source
from gankd.data.folder import FolderSource
from gankd.errors import DataError


def png16(path, array):
    """Write a 16-bit PNG (gray [H, W] or RGB [H, W, 3]) by hand, independently of Pillow."""
    h, w = array.shape[:2]
    color = 2 if array.ndim == 3 else 0
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def odd_folder(tmp_path):
    """One image of every odd kind, each a flat colour so that the expected value is known."""
    d = tmp_path / "odd"
    (d / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 40), (200, 30, 60)).save(d / "a_rgb.png")
    Image.new("RGB", (40, 40), (10, 120, 250)).save(d / "b.jpg", quality=100)
    Image.new("RGB", (40, 40), (90, 200, 20)).save(d / "c.webp", lossless=True)
    Image.new("L", (40, 40), 77).save(d / "d_gray.png")
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(d / "e_rgba_transparent.png")
    pal = Image.new("P", (40, 40), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(d / "sub" / "f_palette.png", transparency=0)
    png16(d / "g_gray16.png", np.full((40, 40), 51400, np.uint16))  # 51400 / 257 = 200
    png16(d / "h_rgb16.png", np.full((40, 40, 3), [65535, 0, 25700], np.uint16))
    (d / "notes.txt").write_text("not an image")
    return d


EXPECTED_RGB = {"a_rgb": (200, 30, 60), "b": (10, 120, 250), "c": (90, 200, 20), "d_gray": (77, 77, 77),
                "e_rgba_transparent": (255, 255, 255), "sub_f_palette": (255, 0, 0), "g_gray16": (200, 200, 200),
                "h_rgb16": (255, 0, 100)}


def test_every_odd_kind_decodes_correctly(odd_folder):
    ds = ImageDataset(open_source(str(odd_folder)), 32)
    assert len(ds) == 8  # notes.txt ignored
    for i in range(len(ds)):
        key = ds.source.key(i)
        pixel = tuple(int(v) for v in ds.uint8(i)[:, 16, 16])
        assert np.allclose(pixel, EXPECTED_RGB[key], atol=2), (key, pixel)
    img, cond = ds[0]["image"], ds[0]["c"]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and -1 <= img.min() <= img.max() <= 1
    assert cond.numel() == 0


def test_centre_crop_and_resize(tmp_path):
    d = tmp_path / "wide"
    d.mkdir()
    arr = np.zeros((64, 128, 3), np.uint8)
    arr[:, :32] = (255, 0, 0)  # left quarter red: cropped away
    arr[:, 32:96] = (0, 255, 0)
    Image.fromarray(arr).save(d / "wide.png")
    out = ImageDataset(open_source(str(d)), 16).uint8(0)
    assert out.shape == (3, 16, 16)
    assert (out[1] > 250).all() and (out[0] < 5).all()


def test_zip_and_dataset_json_labels(tmp_path):
    z = tmp_path / "set.zip"
    with zipfile.ZipFile(z, "w") as f:
        for i in range(3):
            im = Image.new("RGB", (16, 16), (i * 100, 0, 0))
            path = tmp_path / f"{i}.png"
            im.save(path)
            f.write(path, f"img/{i}.png")
        f.writestr("dataset.json", json.dumps({"labels": [[f"img/{i}.png", i % 2] for i in range(3)]}))
    ds = ImageDataset(open_source(str(z)), 16)
    assert len(ds) == 3 and ds.cond_dim == 2
    assert [ds[i]["c"].argmax().item() for i in range(3)] == [0, 1, 0]
    assert ds.uint8(2)[0, 0, 0] == 200


def test_worker_decoding_matches_in_process(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(300):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(d / f"{i:03d}.png")
    source = open_source(str(d))
    pooled = ImageDataset(source, 16, workers=2, cache=True)
    lazy = ImageDataset(source, 16, cache=False, workers=2)
    assert torch.equal(pooled.images[123], lazy.uint8(123))
    batch = next(iter(lazy.loader(8, shuffle=False)))["image"]
    assert batch.shape == (8, 3, 16, 16)
    assert torch.equal(((batch[5] + 1) * 127.5).round().to(torch.uint8), pooled.images[5])


def test_bad_folders(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        FolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        FolderSource(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="has no images"):
        FolderSource(tmp_path / "text")


def test_truncated_and_small_images(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(d / "ok.png")
    data = (d / "ok.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated.png: unreadable or truncated"):
        ImageDataset(open_source(str(d)), 32)
    (d / "truncated.png").unlink()
    with pytest.raises(DataError, match=r"ok.png \(64x64\) is smaller than the resolution 128; allow enlarging with upscale=true"):
        ImageDataset(open_source(str(d)), 128)
    assert resolve(overrides=[f"data={d}", "upscale=true"]).upscale is True  # the setting the message names exists
    assert ImageDataset(open_source(str(d)), 128, upscale=True).uint8(0).shape == (3, 128, 128)
    with pytest.raises(DataError, match="is smaller than the resolution"):
        ImageDataset(open_source(str(d)), 128, cache=False)  # checked from headers before training
