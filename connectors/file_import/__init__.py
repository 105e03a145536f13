"""File import as a connector: customer rows from CSV or Excel (xlsx) files.

Chinese shop exports are often GB18030/GBK with Chinese headers; the reader detects UTF-8 (with
or without BOM), UTF-16 (BOM) and GB18030 (:func:`vault.textfile.detect_encoding`, which does
not take GBK bytes that happen to be valid UTF-8 for UTF-8), and maps headers to catalogue
fields through a TOML mapping (:data:`DEFAULT_MAPPING`, or ``vault import --mapping
MAP.toml``). Rows are read as a stream, one batch at a time, within the limits of
:mod:`vault.textfile` and :mod:`connectors.file_import.xlsx`, so memory stays flat however long
(or however made) the file.
"""

from connectors.file_import.connector import FileImportConnector
from connectors.file_import.mapping import DEFAULT_MAPPING, Mapping, load_mapping
from vault.textfile import detect_encoding

__all__ = ["DEFAULT_MAPPING", "FileImportConnector", "Mapping", "detect_encoding", "load_mapping"]
