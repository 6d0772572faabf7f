"""MovieLens loaders: the UniSRec split, RecBole atomic files, and the original ``.dat`` files.

All three produce a :class:`~iranker.data.sequences.SequenceData`, so ``rec-movie`` can be
built from whichever copy a user has:

* UniSRec (``ml-1m.test.inter`` + ``ml-1m.text`` + ``ml-1m.item2index``): the test file already
  holds, per user, the last <=50 items (as UniSRec's internal indices) and the next item.
* RecBole atomic files (``ml-100k.inter`` + ``ml-100k.item``; the same files ship in PyPI
  ``recbole``): one row per rating with a timestamp.
* GroupLens' own ``ratings.dat`` / ``movies.dat`` (``::``-separated, latin-1).

Item ids are the dataset's original movie ids in every case (UniSRec indices are mapped back),
so titles and ids agree across formats.
"""

from __future__ import annotations

import os
from pathlib import Path

from .atomic import read_atomic, text_of
from .sequences import SequenceData, clean_title, sequences_from_interactions

__all__ = [
    "load_movielens",
    "load_movielens_dat",
    "load_recbole",
    "load_recbole_items",
    "load_unisrec",
]


def load_unisrec(
    folder: str | os.PathLike[str], *, dataset: str = "ml-1m", split: str = "test"
) -> SequenceData:
    """Read a UniSRec-style split: ``{dataset}.{split}.inter`` + ``.text`` + ``.item2index``.

    The ``.inter`` file uses UniSRec's item *indices*; ``.item2index`` maps original ids to
    them, and ``.text`` is keyed by original id ("Title Year Genres."). We return original ids.
    Why: then the same movie has the same id here and in ``ratings.dat``.
    """
    folder = Path(folder)
    inter = read_atomic(folder / f"{dataset}.{split}.inter")
    index_to_id: dict[str, str] = {}
    with open(folder / f"{dataset}.item2index", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{folder / (dataset + '.item2index')}:{lineno}: expected 'id<TAB>index'")
            index_to_id[parts[1]] = parts[0]
    text = read_atomic(folder / f"{dataset}.text")
    text_col = text.column("text", "title", "movie_title")
    if text_col is None:
        raise ValueError(f"{text.path}: no text/title column in {text.columns}")
    titles: dict[str, str] = {}
    for row in text:
        t = clean_title(text_of(row[text_col]))
        if t:
            titles[str(row["item_id"])] = t

    def orig(idx: str) -> str:
        try:
            return index_to_id[idx]
        except KeyError:
            raise ValueError(f"{inter.path}: item index {idx!r} is not in {dataset}.item2index") from None

    seq_col = inter.column("item_id_list")
    if seq_col is None:
        raise ValueError(f"{inter.path}: expected an item_id_list:token_seq column, got {inter.columns}")
    histories, nxt = {}, {}
    for row in inter:
        user = str(row["user_id"])
        histories[user] = [orig(i) for i in row[seq_col]]
        nxt[user] = orig(str(row["item_id"]))
    return SequenceData(
        histories=histories, titles=titles, next_item=nxt, source=f"unisrec:{folder}/{dataset}.{split}.inter"
    )


def load_recbole_items(path: str | os.PathLike[str]) -> dict[str, str]:
    """Item id -> display title from a RecBole ``.item`` file.

    The title column is ``movie_title`` (MovieLens), ``title`` (Amazon) or ``text``; when a
    ``release_year`` column exists the year is appended as "Title (1995)" — the form people
    (and LLMs) know movies by.
    """
    table = read_atomic(path)
    col = table.column("movie_title", "title", "text", "name")
    if col is None:
        raise ValueError(f"{path}: no title column among {table.columns}")
    year_col = table.column("release_year", "year")
    titles = {}
    for row in table:
        title = clean_title(text_of(row[col]))
        if not title:
            continue
        year = text_of(row.get(year_col)) if year_col else ""
        if year and year not in title:
            title = f"{title} ({year})"
        titles[str(row["item_id"])] = title
    return titles


def load_recbole(
    inter_path: str | os.PathLike[str], item_path: str | os.PathLike[str] | None = None
) -> SequenceData:
    """Read RecBole atomic interactions (user, item, timestamp) + item titles.

    Accepts both layouts RecBole uses: one row per interaction (``user_id item_id ...
    timestamp``), grouped here into chronological histories, and the pre-split sequence layout
    (``user_id item_id_list item_id``, as in LLMRank/UniSRec), kept as given.
    """
    inter_path = Path(inter_path)
    if item_path is None:
        stem = inter_path.name.split(".")[0]
        item_path = inter_path.with_name(f"{stem}.item")
    titles = load_recbole_items(item_path)
    table = read_atomic(inter_path)
    if table.column("item_id_list"):
        histories = {str(r["user_id"]): [str(i) for i in r["item_id_list"]] for r in table}
        nxt = {str(r["user_id"]): str(r["item_id"]) for r in table}
        return SequenceData(histories=histories, titles=titles, next_item=nxt, source=f"recbole:{inter_path}")
    for needed in ("user_id", "item_id"):
        if needed not in table.types:
            raise ValueError(f"{inter_path}: missing column {needed!r} (have {table.columns})")
    tcol = table.column("timestamp")
    rows = ((r["user_id"], r["item_id"], (r[tcol] or 0.0) if tcol else 0.0) for r in table)
    data = sequences_from_interactions(rows, titles, source=f"recbole:{inter_path}")
    if tcol is None:
        data.notes.append("no timestamp column: file order used as time order")
    return data


def load_movielens_dat(folder: str | os.PathLike[str]) -> SequenceData:
    """Read GroupLens' ``ratings.dat`` (UserID::MovieID::Rating::Timestamp) and ``movies.dat``.

    The files are latin-1 (titles such as "Misérables, Les"), not UTF-8.
    """
    folder = Path(folder)
    titles: dict[str, str] = {}
    with open(folder / "movies.dat", encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("::")
            if len(parts) < 2:
                raise ValueError(f"{folder / 'movies.dat'}:{lineno}: expected MovieID::Title::Genres")
            t = clean_title(parts[1])
            if t:
                titles[parts[0]] = t
    rows = []
    with open(folder / "ratings.dat", encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("::")
            if len(parts) != 4:
                raise ValueError(
                    f"{folder / 'ratings.dat'}:{lineno}: expected UserID::MovieID::Rating::Timestamp"
                )
            rows.append((parts[0], parts[1], float(parts[3])))
    return sequences_from_interactions(rows, titles, source=f"movielens-dat:{folder}")


def load_movielens(folder: str | os.PathLike[str], *, split: str = "test") -> SequenceData:
    """Whichever MovieLens copy ``folder`` holds: UniSRec split, ``.dat`` files, or RecBole files.

    Detection is by file name, in that order of preference (the UniSRec split is the one the
    paper's numbers are comparable with).
    """
    folder = Path(folder)
    uni = sorted(folder.glob(f"*.{split}.inter"))
    for u in uni:
        dataset = u.name[: -len(f".{split}.inter")]
        if (folder / f"{dataset}.item2index").exists() and (folder / f"{dataset}.text").exists():
            return load_unisrec(folder, dataset=dataset, split=split)
    if (folder / "ratings.dat").exists() and (folder / "movies.dat").exists():
        return load_movielens_dat(folder)
    inters = [p for p in sorted(folder.glob("*.inter")) if p.name.count(".") == 1]
    if inters:
        return load_recbole(inters[0])
    raise FileNotFoundError(
        f"{folder}: no MovieLens data found (expected *.{split}.inter + *.text + *.item2index, "
        "ratings.dat + movies.dat, or RecBole *.inter + *.item)"
    )
