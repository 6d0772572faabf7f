"""Every loader on a tiny self-written fixture in its exact source format."""

from __future__ import annotations

import json

import pytest

from conftest import (
    LLM_PRICES,
    write_amazon_2018,
    write_dcrouter,
    write_graphrouter,
    write_llmrank,
    write_movielens_dat,
    write_msmarco,
    write_r3,
    write_recbole,
    write_trec,
    write_unisrec,
)
from iranker.data.amazon import load_amazon_reviews, load_llmrank, load_r3_csv, read_json_lines
from iranker.data.atomic import read_atomic, text_of
from iranker.data.movielens import load_movielens, load_movielens_dat, load_recbole, load_unisrec
from iranker.data.passage import load_msmarco_parquet, load_qrels, load_trec_run_json
from iranker.data.routing import (
    LLMInfo,
    RoutingRecord,
    load_dcrouter,
    load_graphrouter_csv,
    load_llm_info,
    price_of,
    query_id_of,
    routing_order,
    routing_utilities,
)
from iranker.data.sequences import clean_title, is_junk_title

# -- atomic files --------------------------------------------------------------------------


def test_atomic_typed_header(tmp_path):
    p = tmp_path / "x.inter"
    p.write_text(
        "user_id:token\titem_id_list:token_seq\tscore:float\tvec:float_seq\tplain\n"
        'u1\t1 2 3\t0.5\t1 2\ta "quoted" title\n'
        "u2\t\t\t\t\n",
        encoding="utf-8",
    )
    t = read_atomic(p)
    assert t.columns == ["user_id", "item_id_list", "score", "vec", "plain"]
    assert t.types["plain"] == "token"
    assert t.rows[0] == {
        "user_id": "u1",
        "item_id_list": ["1", "2", "3"],
        "score": 0.5,
        "vec": [1.0, 2.0],
        "plain": 'a "quoted" title',
    }
    assert t.rows[1]["item_id_list"] == [] and t.rows[1]["score"] is None
    assert t.column("title", "plain") == "plain"
    assert text_of(["Toy", "Story"]) == "Toy Story"


def test_atomic_errors(tmp_path):
    p = tmp_path / "bad.inter"
    p.write_text("a:token\tb:weird\n1\t2\n")
    with pytest.raises(ValueError, match="unknown atomic type 'weird'"):
        read_atomic(p)
    p.write_text("a:token\tb:float\n1\tx\n")
    with pytest.raises(ValueError, match=r"bad.inter:2: not a number"):
        read_atomic(p)
    p.write_text("a:token\n1\t2\n")
    with pytest.raises(ValueError, match=r":2: 2 fields but the header has 1"):
        read_atomic(p)


def test_junk_titles():
    assert is_junk_title('<span class="a-size-medium a-color-secondary a-text-normal')
    assert is_junk_title('Rock & Pop - General" />')
    assert is_junk_title("   ") and is_junk_title(None)
    assert not is_junk_title("A < B") and not is_junk_title("Less<More")
    assert clean_title("Pikmin &amp; Olimar  Amiibo") == "Pikmin & Olimar Amiibo"
    assert clean_title("&lt;span class=x&gt;") is None


# -- MovieLens -----------------------------------------------------------------------------


def test_unisrec_maps_indices_to_original_ids(tmp_path):
    d = load_unisrec(write_unisrec(tmp_path / "ml"))
    assert len(d.histories) == 6
    assert d.histories["0"][:3] == ["1000", "1001", "1002"]  # index i -> original id 1000+i
    assert d.next_item["0"] == str(1000 + 25)
    assert d.titles["1003"] == "Movie 03 1993 Drama."
    assert d.target_and_history("0") == ("1025", d.histories["0"])
    assert load_movielens(tmp_path / "ml").source.startswith("unisrec:")


def test_unisrec_unknown_index(tmp_path):
    folder = write_unisrec(tmp_path / "ml")
    (folder / "ml-1m.test.inter").write_text(
        "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1 999\t2\n"
    )
    with pytest.raises(ValueError, match="item index '999' is not in ml-1m.item2index"):
        load_unisrec(folder)


def test_movielens_dat_latin1_and_stable_time_order(tmp_path):
    d = load_movielens_dat(write_movielens_dat(tmp_path / "dat"))
    assert d.titles["2"] == "Misérables, Les (1995)"
    # user 1: item 1 at t=100, then items 3 and 2 share t=760 -> file order (3 before 2)
    assert d.histories["1"] == ["1", "3", "2"]
    assert d.next_item is None
    assert d.target_and_history("1") == ("2", ["1", "3"])
    assert d.target_and_history("2") is None  # one interaction: nothing to predict from
    assert load_movielens(tmp_path / "dat").source.startswith("movielens-dat:")


def test_recbole_atomic(tmp_path):
    d = load_recbole(write_recbole(tmp_path / "rb") / "ml-100k.inter")
    assert d.titles == {"242": "Kolya (1996)", "302": "L.A. Confidential (1997)"}
    assert d.histories["196"] == ["302", "242"]  # sorted by timestamp
    assert d.timestamps["196"] == [881250900, 881250949]
    assert load_movielens(tmp_path / "rb").source.startswith("recbole:")


def test_load_movielens_nothing_there(tmp_path):
    with pytest.raises(FileNotFoundError, match="no MovieLens data"):
        load_movielens(tmp_path)


# -- Amazon --------------------------------------------------------------------------------


def test_llmrank_games(tmp_path):
    d = load_llmrank(write_llmrank(tmp_path / "g"))
    assert d.titles["5"] == "Game 5 & Friends - PC"  # &amp; unescaped
    assert len(d.histories["0"]) == 22 and d.next_item["0"] == "22"
    v = load_llmrank(tmp_path / "g", split="valid")
    assert v.next_item["0"] == "21"


def test_r3_csv_latest_real_row_per_user(tmp_path):
    d = load_r3_csv(write_r3(tmp_path / "r3") / "test.CDs_and_Vinyl_5_2015-10-2018-11.csv")
    # A's latest row has a junk target -> the row before it is used; B has only a junk target
    assert set(d.histories) == {"A", "C"}
    assert d.next_item["A"] == "13"
    assert d.histories["A"] == ["1", "2", "3", "4", "7", "8", "9", "10", "11", "12"]
    assert "7" not in d.titles  # junk title dropped from the universe
    assert d.titles["8"] == "Pure 60's: The #1 Hits"
    assert d.timestamps["A"][-1] == 1500000300 - 100
    assert any("junk" in n for n in d.notes)


def test_r3_csv_missing_column(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("user_id,item_id\nA,1\n")
    with pytest.raises(ValueError, match="missing column"):
        load_r3_csv(p)


def test_amazon_2018_json_lines(tmp_path):
    folder = write_amazon_2018(tmp_path / "amz")
    d = load_amazon_reviews(folder / "CDs_and_Vinyl_5.json.gz", folder / "meta_CDs_and_Vinyl.json")
    assert d.histories == {"U1": ["A1", "A2", "A3"], "U2": ["A3"]}
    assert d.titles == {"A1": "Kind of Blue & More", "A2": "Blue Train"}  # A3 junk, ZZ unreviewed
    assert any("repeated" in n for n in d.notes)
    assert any("no usable title" in n for n in d.notes)
    assert [r["asin"] for r in read_json_lines(folder / "meta_CDs_and_Vinyl.json")][1] == "A2"


def test_json_lines_bad_line(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"a": 1}\nnot json at all\n')
    with pytest.raises(ValueError, match=r"x.json:2: neither JSON"):
        list(read_json_lines(p))


# -- routing -------------------------------------------------------------------------------


def test_dcrouter_and_llm_info(tmp_path):
    folder = write_dcrouter(tmp_path / "dc")
    llms = load_llm_info(folder / "default_llm.json")
    assert set(LLM_PRICES) <= set(llms)
    g = llms["gemma"]
    assert isinstance(g, LLMInfo) and g.input_price == 0.1 and g.meta["size"] == "7B"
    test = load_dcrouter(folder / "test.json")
    assert len(test) == 6 and set(test[0].scores) == set(LLM_PRICES)
    assert test[0].costs is None
    train = load_dcrouter(folder / "train.json")
    assert train[-1].query_id == test[1].query_id  # same question, same id
    assert train[0].meta == {"cluster_id": 0}
    assert query_id_of("x", "dc") == query_id_of("x", "dc") != query_id_of("y", "dc")


def test_graphrouter_csv(tmp_path):
    folder = write_graphrouter(tmp_path / "gr")
    recs = load_graphrouter_csv(folder / "router_data.csv")
    assert len(recs) == 2
    r = recs[0]
    assert r.query == "What is 2+2?" and r.meta == {"task_id": "gsm8k"}
    assert r.scores == {"LLaMA-3 (8b)": 0.5, "Mixtral-8x7B": 0.5, "Qwen-1.5 (72b)": 1.0}
    assert r.costs == {"LLaMA-3 (8b)": 0.1, "Mixtral-8x7B": 0.4, "Qwen-1.5 (72b)": 0.9}
    assert len(load_graphrouter_csv(folder / "router_data.csv", exclude_tasks=["multi_news"])) == 1
    info = load_llm_info(folder / "LLM_Descriptions_v1.json")
    assert info["LLaMA-3 (8b)"].description == "Small. Cheap."


def test_routing_utility_ties_go_to_cheaper():
    llms = {n: LLMInfo(n, n, p, p) for n, p in {"a": 0.9, "b": 0.2, "c": 0.2, "d": 0.1}.items()}
    rec = RoutingRecord("q", "q", {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.0})
    util, cost = routing_utilities(rec, llms, 1.0)
    assert routing_order(util, cost) == ["b", "c", "a", "d"]  # tie a/b/c -> cheaper, then name
    util, cost = routing_utilities(rec, llms, 0.2)
    # norm price: a 1, b/c 0.125, d 0 -> u = 0.2*s - 0.8*np
    assert util["b"] == pytest.approx(0.2 - 0.1) and util["d"] == 0.0
    assert routing_order(util, cost)[0] == "b"
    util, cost = routing_utilities(RoutingRecord("q", "q", {"a": 0.0, "d": 0.0, "b": 0.0}), llms, 0.5)
    assert routing_order(util, cost) == ["d", "b", "a"]
    # measured costs win over prices
    rec2 = RoutingRecord("q", "q", {"a": 1.0, "b": 1.0}, costs={"a": 0.0, "b": 5.0})
    util, cost = routing_utilities(rec2, llms, 0.5)
    assert routing_order(util, cost) == ["a", "b"]
    assert price_of(LLMInfo("x", "x", 0.2, 0.6)) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="no description/price"):
        routing_utilities(RoutingRecord("q", "q", {"zz": 1.0}), llms, 0.5)


# -- passages ------------------------------------------------------------------------------


def test_trec_run_and_qrels(tmp_path):
    folder = write_trec(tmp_path / "trec")
    run = load_trec_run_json(folder / "retrieve_results_dl19.json")
    assert [q.qid for q in run] == ["101", "102", "103"]
    assert [h.rank for h in run[0].hits] == list(range(1, 13))  # re-sorted by rank
    assert run[0].hits[0].docid == "101d1" and run[0].hits[0].text == "passage 101-1 text"
    qrels = load_qrels(folder / "qrels_dl19.json")
    assert qrels["101"]["101d3"] == 3 and isinstance(qrels["101"]["101d6"], int)
    txt = tmp_path / "qrels.txt"
    txt.write_text("101 0 101d3 3\n101 0 101d4 0\n")
    assert load_qrels(txt) == {"101": {"101d3": 3, "101d4": 0}}


def test_trec_run_mixed_qids(tmp_path):
    p = tmp_path / "run.json"
    p.write_text(
        json.dumps(
            [
                {
                    "query": "q",
                    "hits": [
                        {"qid": 1, "docid": "a", "content": "x", "rank": 1, "score": 1.0},
                        {"qid": 2, "docid": "b", "content": "y", "rank": 2, "score": 0.5},
                    ],
                }
            ]
        )
    )
    with pytest.raises(ValueError, match="mixes qids"):
        load_trec_run_json(p)


def test_msmarco_parquet(tmp_path):
    folder = write_msmarco(tmp_path / "msm")
    rows = load_msmarco_parquet(folder)
    assert len(rows) == 4
    assert rows[0].query == "query 0" and rows[0].query_id == "1000"
    assert rows[0].is_selected[0] == 1 and len(rows[0].passages) == 10
    assert load_msmarco_parquet(folder / "train-00000-of-00001.parquet")[1].is_selected[1] == 1
