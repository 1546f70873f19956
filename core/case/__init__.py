"""Case files: one folder holding what another examiner needs to audit and reproduce the work.

Layout (every path the manifest stores is relative to the case folder)::

    CASE/
      case.json            the manifest, written last: the commit point of every save
      audit.jsonl          the hash-chained, append-only audit log (core.case.audit)
      originals/           byte-identical, read-only copies of the evidence and reference images
      candidates/          one safetensors file per candidate set (images, inputs, latents), named by content
      case.autosave.json   unsaved work for crash recovery; removed by the next save

The manifest records each original's SHA-256, the crop / alignment / cell geometry, the models
(name and weights SHA-256), the software versions, every generation request, each candidate's
recipe, the shortlist with notes, the examiner and the times (UTC). Nothing is unpickled: JSON,
PNG/JPEG originals and safetensors only. A save writes new files first and the manifest last, each
through :func:`core.fileio.atomic_write`, so an interrupted save leaves the previous case intact.

The package: :mod:`~core.case.schema` (file names, path safety, the manifest's parts and checks),
:mod:`~core.case.recorder` (:class:`Case`: logging and saving), :mod:`~core.case.reader` (opening and
recovery), :mod:`~core.case.audit` (the hash-chained log), :mod:`~core.case.regenerate` (bit-identical
regeneration), :mod:`~core.case.report` (the report) and :mod:`~core.case.search` (searches recorded in
a case, and a case's candidates as a query), :mod:`~core.case.originals` (removing an original nothing
derives from), :mod:`~core.case.roi` (the region of interest drawn on the report's pictures) and
:mod:`~core.case.unsaved` (work before any case, kept for crash recovery); :mod:`~core.case.copying` and
:mod:`~core.case.folder_copy` hold the heavy file work of a save and of a save as, fit for a worker thread.
It may import the session's modules, ``core.search`` and ``core.video`` (to regenerate what was made from a
clip), never Qt.
"""

from core.case.reader import CaseData, open_case, read_case, read_recovery
from core.case.recorder import Case
from core.case.schema import (
    AUDIT,
    AUTOSAVE,
    CANDIDATES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_CELLS,
    ORIGINALS,
    Original,
    Recovery,
    request_of,
    safe_path,
    software,
)
from core.workbench.evidence import region_from_dict

__all__ = [
    "AUDIT", "AUTOSAVE", "CANDIDATES", "FORMAT", "FORMAT_VERSION", "MANIFEST", "MAX_CELLS", "ORIGINALS", "Case",
    "CaseData", "Original", "Recovery", "open_case", "read_case", "read_recovery", "region_from_dict", "request_of",
    "safe_path", "software",
]
