"""Face images labelled with ages, in the layouts users download them in (never shipped or
downloaded by gankd): the built-in specs `utkface:root=DIR`, `cacd:root=DIR` and
`ffhq-aging:root=DIR,labels=CSV`, each a folder (or zip) read lazily, with an `age` field to filter
on (`utkface:root=DIR,gender=1`) or condition on.

- UTKFace: `[age]_[gender]_[race]_[date&time].jpg` (the aligned crops add `.chip.jpg`); gender
  0 male, 1 female; race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others. A few files of the
  public set lack the gender or race field: those fields are then "?"; the age must parse.
- CACD2000: `[age]_[First]_[Last]_[nnnn].jpg`; `name` is the part between age and number.
- FFHQ-Aging: images named by their FFHQ number (`00000.png`, in any subfolders), and
  `ffhq_aging_labels.csv` with a row per image (`image_number`, `age_group` such as `20-29`,
  `gender`, ...). Its ages are groups: `age` is the group's midpoint, rounded down (`20-29` -> 24),
  `age_group` the group as written.
A file name or CSV row that does not parse is one line naming it.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path, PurePosixPath

from gankd.data.folder import FolderSource
from gankd.errors import DataError

UTKFACE = re.compile(r"^(\d{1,3})(?:_([01]))?(?:_([0-4]))?(?:_\d+)?$")
CACD = re.compile(r"^(\d{1,3})_(.+)_(\d+)$")
FIELDS = {"utkface": ("age", "gender", "race"), "cacd": ("age", "name"), "ffhq-aging": ("age", "age_group", "gender")}
FORMS = {"utkface": "age_gender_race_date.jpg", "cacd": "age_First_Last_nnnn.jpg",
         "ffhq-aging": "an FFHQ number (00000.png) with a row in the labels CSV"}


def stem_of(name: str) -> str:
    """A file's name without folders and without every image suffix (`1_0_0_2017.jpg.chip.jpg` -> `1_0_0_2017`)."""
    base = PurePosixPath(name).name
    return re.sub(r"(\.(jpe?g|png|webp|chip))+$", "", base, flags=re.IGNORECASE)


def utkface_labels(name: str) -> dict | None:
    match = UTKFACE.match(stem_of(name))
    if match is None:
        return None
    age, gender, race = match.groups()
    return {"age": int(age), "gender": gender or "?", "race": race or "?"}


def cacd_labels(name: str) -> dict | None:
    match = CACD.match(stem_of(name))
    return None if match is None else {"age": int(match.group(1)), "name": match.group(2)}


def group_age(group: str) -> int | None:
    """The midpoint of an age group `lo-hi`, rounded down; None when it is not one."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", group)
    return None if match is None else (int(match.group(1)) + int(match.group(2))) // 2


class FaceAgeSource(FolderSource):
    """A folder (or zip) of face images with ages from file names (UTKFace, CACD) or a CSV (FFHQ-Aging)."""

    def __init__(self, layout: str, root: str | None = None, labels: str | None = None):
        if not root:
            raise DataError(f"{layout}: give root=DIR, the folder (or zip) of its images ({FORMS[layout]}); "
                            "gankd never downloads data sets")
        super().__init__(Path(root))
        self.name, self.fields = layout, ("file", *FIELDS[layout])
        rows = self.csv_rows(labels) if layout == "ffhq-aging" else None
        self.face_labels = []
        for name in self.names:
            found = rows.get(number_of(name)) if rows is not None else \
                (utkface_labels if layout == "utkface" else cacd_labels)(name)
            if found is None:
                what = "has no row in the labels CSV" if rows is not None else f"does not parse as {FORMS[layout]}"
                raise DataError(f"{self.path / name}: {what}")
            self.face_labels.append(found)

    def csv_rows(self, labels: str | None) -> dict[int, dict]:
        """{image number: labels} of FFHQ-Aging's CSV (`labels`, or ffhq_aging_labels.csv beside the images)."""
        file = Path(labels) if labels else self.path.parent / "ffhq_aging_labels.csv"
        try:
            text = file.read_text()
        except OSError as err:
            raise DataError(f"ffhq-aging: cannot read the labels CSV {file} ({err.strerror or err}); give "
                            "labels=PATH") from None
        rows = {}
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            number, group = row.get("image_number", ""), row.get("age_group", "")
            age = group_age(group or "")
            if not (number or "").strip().isdigit() or age is None:
                raise DataError(f"{file}:{line}: needs an image_number and an age_group such as 20-29, "
                                f"got {number!r} and {group!r}")
            rows[int(number)] = {"age": age, "age_group": group.strip(), "gender": (row.get("gender") or "?").strip()}
        return rows

    def labels(self, i: int) -> dict:
        return {"file": self.names[i], **self.face_labels[i]}

    def cond(self, i: int):
        return None  # conditioning comes from a field (label=age), not from a dataset.json

    @property
    def cond_dim(self) -> int:
        return 0


def number_of(name: str) -> int | None:
    stem = stem_of(name)
    return int(stem) if stem.isdigit() else None
