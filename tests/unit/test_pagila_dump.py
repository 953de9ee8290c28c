"""pagila's dump, rewritten to keep to schemas of its own and to what PostgreSQL 16 can create."""

import gzip
from pathlib import Path

from custlabel.config import get_settings
from custlabel.demo.pagila import (
    DUMP_FILES,
    default_dataset_dir,
    dump_file,
    renamed_dump,
)

DUMP = """SET transaction_timeout = 0;
CREATE SCHEMA legacy;
ALTER SCHEMA legacy OWNER TO postgres;
--
-- Name: customer; Type: TABLE; Schema: public; Owner: postgres
--
CREATE TABLE public.customer (customer_id integer DEFAULT nextval('public.customer_customer_id_seq'::regclass));
--
-- Name: films_per_customer_rental; Type: VIEW; Schema: public; Owner: postgres
--
CREATE VIEW public.films_per_customer_rental AS SELECT 1 FROM JSON_TABLE(x);
--
-- Data for Name: customer; Type: TABLE DATA; Schema: public; Owner: postgres
--
COPY public.customer (customer_id, note) FROM stdin;
1\tlikes public.domain films
\\.
CREATE VIEW legacy.rental AS SELECT * FROM public.rental;
"""


def test_schemas_are_renamed_json_table_and_pg17_settings_left_out_data_untouched(tmp_path: Path) -> None:
    path = tmp_path / "dump.sql"
    path.write_text(DUMP)
    text = "".join(renamed_dump(path))
    assert "transaction_timeout" not in text and "JSON_TABLE" not in text
    assert "CREATE SCHEMA pagila_legacy;\nALTER SCHEMA pagila_legacy OWNER" in text
    assert "CREATE TABLE pagila.customer (customer_id integer DEFAULT nextval('pagila.customer_customer_id_seq'" in text
    assert "COPY pagila.customer (customer_id, note) FROM stdin;\n1\tlikes public.domain films\n\\.\n" in text
    assert text.endswith("CREATE VIEW pagila_legacy.rental AS SELECT * FROM pagila.rental;\n")


def test_a_gzipped_dump_reads_as_the_plain_one(tmp_path: Path) -> None:
    plain = tmp_path / "dump.sql"
    plain.write_text(DUMP)
    packed = tmp_path / "dump.sql.gz"
    packed.write_bytes(gzip.compress(DUMP.encode("utf-8")))
    assert "".join(renamed_dump(packed)) == "".join(renamed_dump(plain))


def test_the_repository_ships_pagila_with_its_licence_and_source() -> None:
    dataset = default_dataset_dir(get_settings())
    assert dataset == Path(__file__).resolve().parents[2] / "examples" / "pagila"
    assert [dump_file(dataset, name) for name in DUMP_FILES] == [dataset / f"{name}.gz" for name in DUMP_FILES]
    assert "The PostgreSQL License" in (dataset / "LICENSE").read_text()
    assert "https://github.com/xzilla/pagila" in (dataset / "README.md").read_text()
    lines = list(renamed_dump(dataset / "pagila-data.sql.gz"))
    assert "COPY pagila.customer (" in "".join(line for line in lines if line.startswith("COPY "))
