"""Tiny fixtures in the exact formats of every source the loaders read (written per test).

The real files cannot be copied into the project (licences), so each format is reproduced
here in miniature, including the quirks the loaders must handle: typed RecBole headers,
UniSRec indices vs original ids, latin-1 ``.dat`` files, HTML-entity and ``<span`` junk titles,
R3's list literals, gzip vs plain JSON lines, 2014-style Python-literal metadata, dcrouter
train/test overlap, multi-line embedding cells in GraphRouter's CSV, string grades in qrels.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

N_ITEMS = 60


def movie_title(i: int) -> str:
    return f"Movie {i:02d}"


def write_unisrec(folder: Path, n_users: int = 6, hist_len: int = 25) -> Path:
    """ml-1m UniSRec split: indices 0..59 map to original ids 1000+i (deliberately different)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ml-1m.item2index").write_text(
        "".join(f"{1000 + i}\t{i}\n" for i in range(N_ITEMS)), encoding="utf-8"
    )
    (folder / "ml-1m.text").write_text(
        "item_id:token\ttext:token_seq\n"
        + "".join(f"{1000 + i}\t{movie_title(i)} 199{i % 10} Drama.\n" for i in range(N_ITEMS)),
        encoding="utf-8",
    )
    lines = ["user_id:token\titem_id_list:token_seq\titem_id:token"]
    for u in range(n_users):
        length = hist_len if u < n_users - 1 else 10  # last user: too short for rec-movie
        hist = [(u * 7 + j) % N_ITEMS for j in range(length)]
        nxt = (u * 7 + length) % N_ITEMS
        lines.append(f"{u}\t{' '.join(map(str, hist))}\t{nxt}")
    (folder / "ml-1m.test.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_movielens_dat(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "2::Misérables, Les (1995)::Drama\n"
        "3::Heat (1995)::Action\n"
        "4::Alien (1979)::Sci-Fi\n".encode("latin-1")
    )
    (folder / "ratings.dat").write_bytes(
        b"1::3::5::978300760\n1::1::4::978300100\n1::2::3::978300760\n2::2::5::978000000\n"
    )
    return folder


def write_recbole(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t242\t3\t881250949\n196\t302\t3\t881250900\n186\t302\t3\t891717742\n",
        encoding="utf-8",
    )
    (folder / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\tCrime Film-Noir\n",
        encoding="utf-8",
    )
    return folder


def write_llmrank(folder: Path, n_users: int = 6, hist_len: int = 22) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    titles = [f"Game {i} &amp; Friends - PC" if i % 5 == 0 else f"Game {i}" for i in range(N_ITEMS)]
    (folder / "Games-6k.item").write_text(
        "item_id:token\ttitle:token_seq\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(titles)),
        encoding="utf-8",
    )
    for split, shift in (("test", 0), ("valid", 1)):
        lines = ["user_id:token\titem_id_list:token_seq\titem_id:token"]
        for u in range(n_users):
            length = (hist_len if u % 2 == 0 else 4) - shift
            hist = [(u * 3 + j) % N_ITEMS for j in range(length)]
            lines.append(f"{u}\t{' '.join(map(str, hist))}\t{(u * 3 + length) % N_ITEMS}")
        (folder / f"Games-6k.{split}.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


R3_HEADER = (
    "user_id,item_asins,item_asin,history_item_id,item_id,history_item_title,item_title,"
    "history_rating,rating,history_timestamp,timestamp"
)
JUNK = '<span class=""a-size-medium a-color-secondary a-text-normal'


def _r3_row(user: str, hist: list[int], target: int, ts: int, titles: dict[int, str]) -> str:
    def t(i: int) -> str:
        return titles[i].replace('"', '""')

    asins = ", ".join(f"'B{i:09d}'" for i in hist)
    hist_titles = ", ".join(f"'{t(i)}'" if "'" not in titles[i] else f'""{t(i)}""' for i in hist)
    ratings = ", ".join("5.0" for _ in hist)
    stamps = ", ".join(str(ts - 100 * (len(hist) - k)) for k in range(len(hist)))
    target_title = t(target)
    return (
        f'{user},"[{asins}]",B{target:09d},"[{", ".join(map(str, hist))}]",{target},'
        f'"[{hist_titles}]","{target_title}","[{ratings}]",5.0,"[{stamps}]",{ts}'
    )


def write_r3(folder: Path) -> Path:
    """R3 CDs CSVs: item 7 has a junk title; users A (3 test rows), B (junk target only), C."""
    folder.mkdir(parents=True, exist_ok=True)
    titles = {i: f"Album {i}" for i in range(N_ITEMS)}
    titles[7] = JUNK.replace('""', '"')
    titles[8] = "Pure 60's: The #1 Hits"
    (folder / "info.CDs_and_Vinyl_5_2015-10-2018-11.txt").write_text(
        "".join(f"{titles[i]}\t{i}\n" for i in range(N_ITEMS)), encoding="utf-8"
    )
    test = [R3_HEADER]
    test.append(_r3_row("A", [1, 2, 3], 4, 1500000000, titles))
    test.append(_r3_row("A", [1, 2, 3, 4, 7, 8, 9, 10, 11, 12], 13, 1500000300, titles))  # latest
    test.append(_r3_row("A", [2, 3, 4, 7, 8, 9, 10, 11, 12, 13], 7, 1500000600, titles))  # junk target
    test.append(_r3_row("B", [20, 21], 7, 1500000000, titles))
    test.append(_r3_row("C", [30, 31, 32, 33, 34], 35, 1500000000, titles))
    (folder / "test.CDs_and_Vinyl_5_2015-10-2018-11.csv").write_text("\n".join(test) + "\n", encoding="utf-8")
    valid = [R3_HEADER]
    valid.append(_r3_row("A", [1, 2], 3, 1400000000, titles))  # also a test user -> not in train
    valid.append(_r3_row("D", [40, 41, 42], 43, 1400000000, titles))
    valid.append(_r3_row("E", [44, 45], 46, 1400000000, titles))
    (folder / "valid.CDs_and_Vinyl_5_2015-10-2018-11.csv").write_text(
        "\n".join(valid) + "\n", encoding="utf-8"
    )
    return folder


def write_amazon_2018(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    reviews = [
        {"overall": 5.0, "reviewerID": "U1", "asin": "A2", "unixReviewTime": 200},
        {"overall": 4.0, "reviewerID": "U1", "asin": "A1", "unixReviewTime": 100},
        {"overall": 4.0, "reviewerID": "U1", "asin": "A1", "unixReviewTime": 100},  # duplicate
        {"overall": 3.0, "reviewerID": "U1", "asin": "A3", "unixReviewTime": 300},
        {"overall": 5.0, "reviewerID": "U2", "asin": "A3", "unixReviewTime": 50},
    ]
    with gzip.open(folder / "CDs_and_Vinyl_5.json.gz", "wt", encoding="utf-8") as fh:
        for r in reviews:
            fh.write(json.dumps(r) + "\n")
    meta = [
        json.dumps({"asin": "A1", "title": "Kind of Blue &amp; More"}),
        "{'asin': 'A2', 'title': 'Blue Train'}",  # 2014 style
        json.dumps({"asin": "A3", "title": '<span class="a-size-medium">'}),
        json.dumps({"asin": "ZZ", "title": "Never reviewed"}),
    ]
    (folder / "meta_CDs_and_Vinyl.json").write_text("\n".join(meta) + "\n", encoding="utf-8")
    return folder


#: 9 LLMs like dcrouter: gemma cheapest (0.1), five at 0.2, three at 0.9
LLM_PRICES = {
    "gemma": 0.1,
    "qwen": 0.2,
    "mistral": 0.2,
    "llama8": 0.2,
    "chatqa8": 0.2,
    "codegemma": 0.2,
    "nemotron51": 0.9,
    "chatqa70": 0.9,
    "nemotron49": 0.9,
}


def write_dcrouter(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    llms = {
        n: {
            "size": "7B",
            "feature": f"{n} is a model. Priced at ${p:.2f} per million tokens.",
            "input_price": p,
            "output_price": p,
            "model": f"org/{n}",
            "service": "NVIDIA",
        }
        for n, p in LLM_PRICES.items()
    }
    llms["unused-extra"] = {"size": "1B", "feature": "not scored", "input_price": 5.0, "output_price": 5.0}
    (folder / "default_llm.json").write_text(json.dumps(llms, indent=2), encoding="utf-8")

    def rec(q: str, good: set[str], partial: dict[str, float] | None = None) -> dict:
        scores = {n: (1.0 if n in good else 0.0) for n in LLM_PRICES}
        scores.update(partial or {})
        return {"question": q, "scores": scores}

    test = [
        rec("Q1: all fail", set()),
        rec("Q2: only big ones right", {"nemotron51", "chatqa70"}),
        rec("Q3: two cheap ones right", {"qwen", "mistral"}),
        rec("Q4: partial", set(), {"chatqa70": 0.75, "qwen": 0.5}),
        rec("Q5: everybody right", set(LLM_PRICES)),
        rec("Q6: gemma right", {"gemma"}),
    ]
    train = [dict(r, cluster_id=0) for r in [rec(f"T{i}", {"qwen"}) for i in range(5)]]
    train.append(dict(test[1], cluster_id=3))  # overlap with test, like the real files
    (folder / "test.json").write_text(json.dumps(test, indent=2), encoding="utf-8")
    (folder / "train.json").write_text(json.dumps(train, indent=2), encoding="utf-8")
    return folder


def write_graphrouter(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header = "task_id,task_description,task_description_embedding,query,query_embedding,ground_truth,metric,llm,effect,cost"
    rows = [header]
    emb = '"[[ 0.1 -0.2\n  0.3 ]]"'
    for q, task in (("What is 2+2?", "gsm8k"), ("Summarise this, please", "multi_news")):
        for llm, eff, cost in (
            ("LLaMA-3 (8b)", 0.5, 0.1),
            ("Mixtral-8x7B", 0.5, 0.4),
            ("Qwen-1.5 (72b)", 1.0, 0.9),
        ):
            rows.append(f'{task},A task.,{emb},"{q}",{emb},4,em,{llm},{eff},{cost}')
    (folder / "router_data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "LLM_Descriptions_v1.json").write_text(
        json.dumps(
            {
                "LLaMA-3 (8b)": {"feature": "Small.\nCheap.", "input_price": 0.2, "output_price": 0.2},
                "Mixtral-8x7B": {"feature": "Medium.", "input_price": 0.6, "output_price": 0.6},
                "Qwen-1.5 (72b)": {"feature": "Large.", "input_price": 0.9, "output_price": 0.9},
            }
        ),
        encoding="utf-8",
    )
    return folder


def write_trec(folder: Path) -> Path:
    """3 queries x 12 hits. q1: rel d3 (grade 3), d5 (grade 2), d2 grade 1; zeros d1, d6..d12;
    d4 unjudged; "999" judged but not retrieved.
    q2: no grade>=2. q3: one grade-2 but only 2 judged zeros."""
    folder.mkdir(parents=True, exist_ok=True)
    run, qrels = [], {}
    for qid, text in ((101, "what is a flea"), (102, "cost of concrete"), (103, "define sigmet")):
        hits = [
            {
                "content": f"passage {qid}-{j} text",
                "qid": qid,
                "docid": f"{qid}d{j}",
                "rank": j,
                "score": 20.0 - j,
            }
            for j in range(1, 13)
        ]
        run.append({"query": text, "hits": list(reversed(hits))})  # out of order on purpose
        qrels[str(qid)] = {}
    qrels["101"] = {
        "101d3": "3",
        "101d5": "2",
        "101d2": "1",
        "999": "3",
        "101d1": "0",
        **{f"101d{j}": "0" for j in range(6, 13)},
    }
    qrels["102"] = {"102d1": "1", **{f"102d{j}": "0" for j in range(2, 13)}}
    qrels["103"] = {"103d4": "2", "103d1": "0", "103d2": "0"}
    (folder / "retrieve_results_dl19.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    (folder / "qrels_dl19.json").write_text(json.dumps(qrels, indent=2), encoding="utf-8")
    return folder


def write_msmarco(folder: Path, split: str = "train") -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for q in range(4):
        n = 10 if q != 3 else 3
        sel = [0] * n
        if q != 2:
            sel[q % n] = 1  # q2 has no selected passage
        rows.append(
            {
                "answers": ["x"],
                "query": f"query {q}",
                "query_id": 1000 + q,
                "query_type": "DESCRIPTION",
                "passages": {
                    "is_selected": sel,
                    "passage_text": [f"q{q} passage {i}" for i in range(n)],
                    "url": [f"http://x/{i}" for i in range(n)],
                },
                "wellFormedAnswers": [],
            }
        )
    pq.write_table(pa.Table.from_pylist(rows), folder / f"{split}-00000-of-00001.parquet")
    return folder


@pytest.fixture
def shared_root(tmp_path: Path) -> Path:
    """A data root laid out like the project's shared data, every source in miniature."""
    root = tmp_path / "data"
    write_unisrec(root / "rec_movie" / "ml-1m_unisrec", n_users=40)
    write_llmrank(root / "rec_game" / "Games-6k", n_users=40)
    write_r3(root / "rec_music" / "cds_d3_r3")
    write_dcrouter(root / "router" / "llmrouter_dcrouter")
    write_trec(root / "passage" / "trec_dl")
    return root


def real_data_dir() -> Path | None:
    """The shared real data (``../shared/data`` from the project root), if present."""
    env = os.environ.get("IRANKER_SHARED_DATA")
    p = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return p if p.is_dir() else None


@pytest.fixture
def real_data() -> Path:
    p = real_data_dir()
    if p is None:
        pytest.skip("shared real data not found (set IRANKER_SHARED_DATA)")
    return p
