"""Export of image sources to PNG folders, and seeded n-shot splits with a checksummed manifest.

A split folder holds `train/` (the shots), `eval/` (every other image) and `manifest.json`
(the spec, seed, and each file's path, sha256 and labels; for labelled data each part's
`dataset.json` with its classes and their checksums), so a few-shot experiment names
exactly the images it trained on and the held-out images it was evaluated on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from gankd.data.dataset import check_sizes, crop_resize
from gankd.data.folder import FolderSource
from gankd.data.source import ImageSource
from gankd.errors import DataError
from gankd.fileio import atomic_write, new_dir
from gankd.images import png_bytes
from gankd.progress import progress
from gankd.seeds import check_seed

MANIFEST = "manifest.json"
SPLIT_FORMAT = "gankd-split"


def write_images(source: ImageSource, indices, folder: Path, resolution: int | None = None) -> list[dict]:
    """Write images as PNGs named by their keys; returns one record per file (path, sha256, labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    records, used = [], set()
    for i in progress(list(indices), f"writing {folder.name}", unit="img"):
        image = source.image(i)
        if resolution:
            image = crop_resize(image, resolution)
        data = png_bytes(image)
        name = source.key(i)
        if name in used:
            name = f"{name}-{i}"
        used.add(name)
        atomic_write(folder / f"{name}.png", data)
        records.append({"file": f"{name}.png", "index": int(i), "sha256": hashlib.sha256(data).hexdigest(),
                        "labels": source.labels(i)})
    return records


def export(source: ImageSource, out_dir: str | Path, resolution: int | None = None, force: bool = False) -> Path:
    """Write every image of `source` to a new folder, with labels.json (and dataset.json if conditional);
    at `resolution`, images smaller than it are refused (unless the source enlarges, as in training)."""
    if resolution and not source.upscale_ok:
        check_sizes(source, resolution, "use larger images, or a lower --res")
    out = new_dir(out_dir, force)
    records = write_images(source, range(len(source)), out, resolution)
    atomic_write(out / "labels.json", json.dumps({r["file"]: r["labels"] for r in records}, indent=1).encode())
    write_conditioning(source, records, out)
    return out


def write_conditioning(source: ImageSource, records: list[dict], folder: Path) -> str | None:
    """For a conditional source, `folder`/dataset.json with each file's class index (or vector), in
    NVlabs' layout; returns its sha256 (None: unconditional, nothing written)."""
    if not source.cond_dim:
        return None
    labels = []
    for r in records:
        cond = source.cond(r["index"])
        is_onehot = set(np.unique(cond)) <= {0, 1} and cond.sum() == 1
        labels.append([r["file"], int(cond.argmax()) if is_onehot else cond.tolist()])
    data = json.dumps({"labels": labels}).encode()
    atomic_write(folder / "dataset.json", data)
    return hashlib.sha256(data).hexdigest()


def make_split(source: ImageSource, shots: int, seed: int, out_dir: str | Path, spec: str,
               resolution: int | None = None, force: bool = False) -> dict:
    """Draw `shots` training images with a seeded permutation; all others form the evaluation set.
    Images are kept at their size; with `resolution` (the one they will be trained at), images
    smaller than it are refused before anything is written, unless the source enlarges (built-in sets)."""
    if len(source) < 2:
        raise DataError(f"{spec!r} has {len(source)} image; a split needs at least one training shot "
                        "and one image left for evaluation")
    if not 1 <= shots < len(source):
        raise DataError(f"--shots must be between 1 and {len(source) - 1} for {spec!r} ({len(source)} images), "
                        f"got {shots}")
    check_seed(seed, "the split's seed")
    if resolution and not source.upscale_ok:
        check_sizes(source, resolution, "use larger images, or a lower --res (the resolution they will be "
                                        "trained at; 0: no check, to train with upscale=true)")
    out = new_dir(out_dir, force)
    order = np.random.default_rng(seed).permutation(len(source))
    parts = {"train": sorted(order[:shots].tolist()), "eval": sorted(order[shots:].tolist())}
    files, conditioning = [], {}
    for part, indices in parts.items():
        records = write_images(source, indices, out / part)
        for record in records:
            files.append({"path": f"{part}/{record['file']}", "split": part, **record})
            files[-1].pop("file")
        digest = write_conditioning(source, records, out / part)  # labelled data keeps its classes
        if digest:
            conditioning[f"{part}/dataset.json"] = digest
    manifest = {"format": SPLIT_FORMAT, "version": 1, "spec": spec, "seed": seed, "shots": shots,
                "total": len(source), "files": files, **({"conditioning": conditioning} if conditioning else {})}
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def verify_split(folder: str | Path) -> dict:
    """Check that the folder holds exactly the manifest's files with their checksums; returns the manifest."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("format") != SPLIT_FORMAT:
            raise KeyError("format")
    except FileNotFoundError:
        raise DataError(f"{folder}: no {MANIFEST}; is it a split made by `gankd data split`?") from None
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{folder}/{MANIFEST}: not a gankd split manifest ({err})") from None
    listed = set()
    for name, digest in [(e["path"], e["sha256"]) for e in files] + list(manifest.get("conditioning", {}).items()):
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: listed in the manifest but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise DataError(f"{path}: sha256 differs from the manifest (file changed)")
        listed.add(name)
    for part in ("train", "eval"):
        extra = sorted(p.relative_to(folder).as_posix() for p in (folder / part).glob("*") if p.is_file())
        extra = [p for p in extra if p not in listed]
        if extra:
            raise DataError(f"{folder / extra[0]}: not in the manifest ({len(extra)} unlisted files)")
    return manifest


def load_split(folder: str | Path) -> tuple[ImageSource, ImageSource]:
    """(training shots, evaluation images) of a verified split."""
    verify_split(folder)
    return FolderSource(Path(folder) / "train"), FolderSource(Path(folder) / "eval")
