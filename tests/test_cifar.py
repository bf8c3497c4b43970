"""CIFAR-10/100 from the user's copy in torchvision's layout, through the restricted unpickler."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from gankd.data.spec import open_source
from gankd.errors import DataError

NAMES10 = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def dump(path: Path, value) -> None:
    with open(path, "wb") as file:
        pickle.dump(value, file, protocol=2)  # CIFAR's files are protocol-2 pickles


def write_cifar10(root: Path, per_batch: int = 3) -> dict:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    dump(folder / "batches.meta", {b"label_names": NAMES10, b"num_cases_per_batch": per_batch})
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data, labels = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), rng.integers(0, 10, per_batch).tolist()
        dump(folder / name, {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                             b"filenames": [b"x.png"] * per_batch})
        written[name] = (data, labels)
    return written


def test_cifar10_train_and_test_parts(tmp_path):
    written = write_cifar10(tmp_path)
    train = open_source(f"cifar10:root={tmp_path},label=label")
    data, labels = written["data_batch_2"]
    assert len(train) == 15 and train.labels(3) == {"label": NAMES10[labels[0]].decode()}
    np.testing.assert_array_equal(train.image(3), data[0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert train.cond(3).argmax() == sorted({train.labels(i)["label"] for i in range(15)}).index(train.labels(3)["label"])
    test = open_source(f"cifar10:root={tmp_path},part=test")
    np.testing.assert_array_equal(test.image(2), written["test_batch"][0][2].reshape(3, 32, 32).transpose(1, 2, 0))


def test_cifar100_fine_and_coarse_labels_from_the_environment(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    dump(folder / "meta", {b"fine_label_names": [b"apple", b"bee"], b"coarse_label_names": [b"fruit", b"insects"]})
    for part in ("train", "test"):
        dump(folder / part, {b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1, 0], b"coarse_labels": [1, 0]})
    monkeypatch.setenv("GANKD_CIFAR", str(tmp_path))
    source = open_source("cifar100:coarse=insects")
    assert len(source) == 1 and source.labels(0) == {"label": "bee", "coarse": "insects"}


def test_cifar_pickles_that_run_code_are_refused_and_missing_data_is_one_line(tmp_path):
    write_cifar10(tmp_path)

    class Payload:
        def __reduce__(self):
            return os.system, ("touch " + str(tmp_path / "ran"),)

    dump(tmp_path / "cifar-10-batches-py" / "data_batch_3", {b"data": Payload()})
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR batch \(refused to unpickle posix\.system"):
        open_source(f"cifar10:root={tmp_path}")
    assert not (tmp_path / "ran").exists()
    with pytest.raises(DataError) as err:
        open_source(f"cifar10:root={tmp_path / 'none'}")
    assert "cifar-10-python.tar.gz" in str(err.value) and "\n" not in str(err.value)
