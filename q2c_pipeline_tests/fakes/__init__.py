"""Wire-level fakes of the source systems, served on 127.0.0.1 by the tests (source-apis.md §7)."""
