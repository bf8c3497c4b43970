"""Data-set specs: `NAME[:TERM,TERM,...]` selects and filters a built-in set, or names a folder/zip.

Terms:
- `field=v1|v2` keeps images whose label `field` is one of the values; `field!=v1|v2` drops them;
- a set's options, e.g. `bg=alpha` for emoji or `chars=ABC` for glyphs;
- `label=FIELD` makes that label field the conditioning class (one-hot).

Examples: `emoji:group=animals,tone=none`, `emoji:group!=smileys|animals|food|flags`,
`glyphs:weight=700,chars=AB`, `digits:digit=3`, `builtin:digits`, `./my_photos`, `shots.zip`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gankd.data.builtin import BUILTINS
from gankd.data.folder import FolderSource
from gankd.data.source import ImageSource, Subset
from gankd.errors import DataError, did_you_mean, unknown


@dataclass
class Spec:
    text: str
    name: str
    keep: dict[str, set[str]] = field(default_factory=dict)
    drop: dict[str, set[str]] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    label: str | None = None


def parse_spec(text: str) -> Spec:
    """Parse a built-in spec; raises DataError naming the offending term."""
    name, _, terms = text.removeprefix("builtin:").partition(":")
    if name not in BUILTINS:
        raise DataError(f"{unknown('data set', name, BUILTINS)}; or give an existing folder or zip")
    builtin, spec = BUILTINS[name], Spec(text, name)
    for term in filter(None, (t.strip() for t in terms.split(","))):
        negate = "!=" in term
        key, sep, value = term.partition("!=" if negate else "=")
        if not sep or not key:
            raise DataError(f"bad term {term!r} in {text!r}: expected field=value or field!=value")
        if key == "label" and not negate:
            if value not in builtin.fields:
                raise DataError(f"label={value}: {name} has no field {value!r} (fields: {', '.join(builtin.fields)})")
            spec.label = value
        elif key in builtin.options and not negate:
            spec.options[key] = value
        elif key in builtin.fields:
            (spec.drop if negate else spec.keep).setdefault(key, set()).update(value.split("|"))
        else:
            options = [*builtin.options, "label"]
            raise DataError(f"{name} has no field or option {key!r}{did_you_mean(key, [*builtin.fields, *options])}; "
                            f"fields: {', '.join(builtin.fields)}; options: {', '.join(options)}")
    return spec


def select(source: ImageSource, spec: Spec) -> ImageSource:
    """The images of `source` whose labels pass the spec's filters."""
    if not spec.keep and not spec.drop and not spec.label:
        return source

    def passes(labels: dict) -> bool:
        return (all(str(labels[k]) in v for k, v in spec.keep.items())
                and not any(str(labels[k]) in v for k, v in spec.drop.items()))

    indices = [i for i in range(len(source)) if passes(source.labels(i))]
    if not indices:
        raise DataError(f"no {spec.name} image matches {spec.text!r}")
    return Subset(source, indices, class_field=spec.label)


def open_source(text: str) -> ImageSource:
    """A source from a spec: `builtin:`-prefixed or bare built-in names, else a folder or zip path."""
    named = text.partition(":")[0] in BUILTINS  # cifar10:root=/data/cifar is a spec, not a path
    if not text.startswith("builtin:") and (Path(text).exists() or not named and ("/" in text or text.endswith(".zip"))):
        return FolderSource(Path(text))
    spec = parse_spec(text)
    return select(BUILTINS[spec.name].make(**spec.options), spec)
