"""Ring 1: reports over the model. JSON today (one object per endpoint, versioned by a committed JSON
Schema in ``schemas/``); SARIF and text later. Imports only ``tlsward.model`` and libraries."""

from tlsward.report.json import (
    RESULT_SCHEMA,
    SCHEMA_VERSION,
    SUMMARY_SCHEMA,
    Summary,
    is_unscannable,
    load_schema,
    result_to_dict,
    summary_to_dict,
)

__all__ = [
    "RESULT_SCHEMA",
    "SCHEMA_VERSION",
    "SUMMARY_SCHEMA",
    "Summary",
    "is_unscannable",
    "load_schema",
    "result_to_dict",
    "summary_to_dict",
]
