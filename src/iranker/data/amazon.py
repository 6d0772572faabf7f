"""Amazon review loaders: LLMRank atomic files, the R3 CDs CSVs, and the original 2018 JSON lines.

All produce a :class:`~iranker.data.sequences.SequenceData`:

* LLMRank (``Games-6k.test.inter`` + ``Games-6k.item``): per user the history (<=49 items)
  and the next item, already split; titles keyed by LLMRank's item ids.
* R3 (``test.CDs_and_Vinyl_5_....csv`` + ``info....txt``): one CSV row per interaction in the
  split's time window, each with the previous <=10 items (titles, ratings, timestamps). We keep
  one row per user — the latest whose target has a real title — because several rows of the
  same user would be near-duplicate examples. Item ids are R3's integer indices.
* Amazon Reviews 2018 (``CDs_and_Vinyl_5.json.gz`` + ``meta_CDs_and_Vinyl.json.gz``): one JSON
  object per line with ``reviewerID``, ``asin``, ``unixReviewTime``; metadata lines with
  ``asin`` and ``title``. gz or plain. Item ids are ASINs.

Titles are HTML-unescaped and scraped HTML fragments (``<span class=...``) are dropped
(see :func:`~iranker.data.sequences.is_junk_title`).
"""

from __future__ import annotations

import ast
import csv
import gzip
import json
import os
from pathlib import Path
from typing import IO, Any, Iterator

from .movielens import load_recbole
from .sequences import SequenceData, clean_title, sequences_from_interactions

__all__ = [
    "load_amazon_reviews",
    "load_llmrank",
    "load_r3_csv",
    "load_r3_info",
    "read_json_lines",
]


def load_llmrank(
    folder: str | os.PathLike[str], *, dataset: str | None = None, split: str = "test"
) -> SequenceData:
    """Read LLMRank's ``{dataset}.{split}.inter`` (user, item_id_list, item_id) + ``{dataset}.item``.

    ``dataset`` defaults to the one ``{name}.{split}.inter`` file in ``folder``.
    """
    folder = Path(folder)
    if dataset is None:
        found = sorted(folder.glob(f"*.{split}.inter"))
        if not found:
            raise FileNotFoundError(f"{folder}: no *.{split}.inter file")
        dataset = found[0].name[: -len(f".{split}.inter")]
    data = load_recbole(folder / f"{dataset}.{split}.inter", folder / f"{dataset}.item")
    data.source = f"llmrank:{folder}/{dataset}.{split}.inter"
    return data


def load_r3_info(path: str | os.PathLike[str]) -> dict[str, str]:
    """R3's ``info.*.txt``: one ``title<TAB>index`` per line -> {index: clean title}.

    Junk titles (29 in the CDs file are ``<span ...`` fragments) are left out.
    """
    titles: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            title, sep, index = line.rpartition("\t")
            if not sep or not index.strip().isdigit():
                raise ValueError(f"{path}:{lineno}: expected 'title<TAB>index'")
            t = clean_title(title)
            if t:
                titles[index.strip()] = t
    return titles


def _literal_list(value: str, where: str) -> list[Any]:
    try:
        out = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise ValueError(f"{where}: not a list literal: {value[:60]!r}") from None
    if not isinstance(out, (list, tuple)):
        raise ValueError(f"{where}: expected a list, got {type(out).__name__}")
    return list(out)


def load_r3_csv(
    csv_path: str | os.PathLike[str], info_path: str | os.PathLike[str] | None = None
) -> SequenceData:
    """Read an R3 split CSV: per user the latest row with a real next-item title.

    Columns used: ``user_id, history_item_id, item_id, history_item_title, item_title,
    history_timestamp, timestamp``. History items with junk titles stay in the history (they
    are real interactions) but have no title, so builders leave them out of the text.
    ``info_path`` (the ``info.*.txt`` next to it) supplies the full item universe; when absent,
    titles come from the CSV itself.
    """
    csv_path = Path(csv_path)
    if info_path is None:
        guess = sorted(csv_path.parent.glob("info.*.txt"))
        if not guess:
            guess = sorted(csv_path.parent.parent.glob("info/info.*.txt"))
        info_path = guess[0] if guess else None
    titles = load_r3_info(info_path) if info_path else {}
    best: dict[str, tuple[tuple[int, int], list[str], str, list[int]]] = {}
    needed = {"user_id", "history_item_id", "item_id", "history_item_title", "item_title"}
    n_junk_target = 0
    with open(csv_path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = needed - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}:1: missing column(s) {sorted(missing)}")
        for lineno, row in enumerate(reader, start=2):
            where = f"{csv_path}:{lineno}"
            hist_ids = [str(i) for i in _literal_list(row["history_item_id"], where)]
            hist_titles = _literal_list(row["history_item_title"], where)
            if len(hist_ids) != len(hist_titles):
                raise ValueError(f"{where}: {len(hist_ids)} history ids but {len(hist_titles)} titles")
            for i, t in zip(hist_ids, hist_titles):
                ct = clean_title(str(t))
                if ct and i not in titles:
                    titles[i] = ct
            target = str(row["item_id"]).strip()
            target_title = clean_title(row["item_title"])
            if not target_title:
                n_junk_target += 1
                continue
            titles.setdefault(target, target_title)
            ts = int(float(row["timestamp"])) if row.get("timestamp") else 0
            hist_ts = (
                [int(float(x)) for x in _literal_list(row["history_timestamp"], where)]
                if row.get("history_timestamp")
                else []
            )
            key = (ts, lineno)
            user = row["user_id"]
            if user not in best or key > best[user][0]:
                best[user] = (key, hist_ids, target, hist_ts)
    data = SequenceData(
        histories={u: v[1] for u, v in best.items()},
        titles=titles,
        next_item={u: v[2] for u, v in best.items()},
        source=f"r3:{csv_path}",
        timestamps={u: v[3] for u, v in best.items()},
    )
    if n_junk_target:
        data.notes.append(f"{n_junk_target} rows skipped: next item's title is HTML junk")
    return data


def _open_maybe_gz(path: Path) -> IO[str]:
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_json_lines(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield one dict per line of a JSON-lines file, gzip-compressed or plain (by magic bytes).

    Lines that are not JSON are tried as Python literals: the 2014 Amazon metadata was written
    with ``str(dict)`` (single quotes), and users mix both releases.
    """
    path = Path(path)
    with _open_maybe_gz(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                try:
                    obj = ast.literal_eval(line)
                except (ValueError, SyntaxError):
                    raise ValueError(f"{path}:{lineno}: neither JSON nor a Python dict literal") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected an object")
            yield obj


def load_amazon_reviews(
    reviews_path: str | os.PathLike[str], meta_path: str | os.PathLike[str]
) -> SequenceData:
    """Amazon Reviews 2018 (or 2014) reviews + metadata -> chronological histories of ASINs.

    A user's repeated review of the same ASIN is kept once (the first): the raw files contain
    exact duplicates. Only metadata of reviewed ASINs is kept, so negatives are sampled from the
    same (e.g. 5-core) item universe as the positives.
    """
    rows: list[tuple[str, str, float]] = []
    seen: set[tuple[str, str]] = set()
    n_dupes = 0
    for lineno, r in enumerate(read_json_lines(reviews_path), start=1):
        try:
            user, asin, t = str(r["reviewerID"]), str(r["asin"]), float(r["unixReviewTime"])
        except KeyError as err:
            raise ValueError(f"{reviews_path}:{lineno}: missing field {err}") from None
        if (user, asin) in seen:
            n_dupes += 1
            continue
        seen.add((user, asin))
        rows.append((user, asin, t))
    asins = {a for _, a, _ in rows}
    titles: dict[str, str] = {}
    for m in read_json_lines(meta_path):
        asin = str(m.get("asin", ""))
        if asin in asins and asin not in titles:
            t = clean_title(m.get("title"))
            if t:
                titles[asin] = t
    data = sequences_from_interactions(rows, titles, source=f"amazon2018:{reviews_path}")
    if n_dupes:
        data.notes.append(f"{n_dupes} repeated (user, item) reviews dropped")
    missing = len(asins) - len(titles)
    if missing:
        data.notes.append(f"{missing} of {len(asins)} items have no usable title")
    return data
