"""pagila's dump, rewritten to keep to schemas of its own and to what PostgreSQL 16 can create."""

from pathlib import Path

from custlabel.pagila import renamed_dump

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
