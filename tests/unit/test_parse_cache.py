"""dbt's parse kept per target, database and vars: put back before a command of the same key, saved when dbt wrote
one, the parses used last kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

from custlabel.config import Connection
from custlabel.warehouse import parse_cache

CONNECTION = Connection(host="127.0.0.1", port=5432, user="custlabel", password="", dbname="custlabel")


def dbt_writes_a_parse(target_dir: Path, content: str) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / parse_cache.PARSE_FILE).write_text(content)


def test_each_key_gets_back_the_parse_dbt_wrote_under_it(tmp_path: Path) -> None:
    prod, test = (parse_cache.key(target, CONNECTION, {}) for target in ("prod", "test"))
    for key, content in ((prod, "prod parse"), (test, "test parse")):
        with parse_cache.kept(tmp_path, key):
            dbt_writes_a_parse(tmp_path, content)
    with parse_cache.kept(tmp_path, prod):
        assert (tmp_path / parse_cache.PARSE_FILE).read_text() == "prod parse"
    with parse_cache.kept(tmp_path, parse_cache.key("prod", CONNECTION, {"outcome_window_days": 30})):
        assert (tmp_path / parse_cache.PARSE_FILE).read_text() == "prod parse", "a new key: dbt's file as it is"


def test_a_parse_dbt_did_not_write_is_not_filed_under_another_key(tmp_path: Path) -> None:
    dbt_writes_a_parse(tmp_path, "another database's parse")
    other = parse_cache.key("prod", CONNECTION, {"freshness": "warn"})
    with parse_cache.kept(tmp_path, other):
        pass  # dbt stopped before parsing
    assert not (tmp_path / parse_cache.FOLDER / f"{other}.msgpack").exists()


def test_the_parses_used_last_are_kept(tmp_path: Path) -> None:
    keys = [parse_cache.key("prod", CONNECTION, {"outcome_window_days": days}) for days in range(parse_cache.KEPT + 4)]
    for key in keys:
        with parse_cache.kept(tmp_path, key):
            dbt_writes_a_parse(tmp_path, key)
        time.sleep(0.01)
    first = tmp_path / parse_cache.FOLDER / f"{keys[0]}.msgpack"
    assert not first.exists()
    os.utime(tmp_path / parse_cache.FOLDER / f"{keys[4]}.msgpack")  # the oldest left, used again
    with parse_cache.kept(tmp_path, keys[0]):
        dbt_writes_a_parse(tmp_path, "again")
    saved = {path.stem for path in (tmp_path / parse_cache.FOLDER).glob("*.msgpack")}
    assert len(saved) == parse_cache.KEPT and keys[0] in saved and keys[4] in saved and keys[5] not in saved
