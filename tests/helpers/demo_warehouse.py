"""The night the session's built demo warehouse (the `built_warehouse` fixture) is built for."""

DEMO_END_DATE = "2026-06-30"
