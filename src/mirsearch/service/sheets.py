"""Task ``sheets``: the pages and systems of printed music that an audio excerpt corresponds to.

The pages are the collection's sheet items (``.png`` / ``.jpg`` / ``.pdf`` files that ``mirsearch index`` found
among its paths, :func:`index_sheets`), kept with their detected systems and the pitch classes read on them
(:class:`mirsearch.index.sheets.NotationReader`) in the collection's sheet store (:mod:`mirsearch.index.sheets`);
the search is :func:`mirsearch.search.sheets.search_sheets_notation`. The learned two-branch model
(``mirsearch.models.sheets``) is not served: on an unseen engraver it found 1 % of systems (docs/sheets.md).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from mirsearch.errors import ParameterError
from mirsearch.search.audio_query import AudioQuery
from mirsearch.search.results import SearchResult
from mirsearch.service.core import Context, Request, param, query_field, register, version_block


@dataclass(frozen=True)
class SheetSearchRequest(Request):
    """Parameters of a search for an audio excerpt in the collection's sheet music."""

    query: AudioQuery = query_field("the audio excerpt (2-30 s)")
    top: int = param(10, help="number of matches (systems)", minimum=1, maximum=1000)


#: the result of a sheet search: the one search result type (matches are ``SheetMatch``; ``rejected`` stays empty)
SheetSearchResult = SearchResult


def sheet_store(collection):
    """The collection's sheet store (one object per open collection)."""
    from mirsearch.index.sheets import SheetStore

    return collection.views.get(("sheet-store",), lambda: SheetStore.for_collection(collection.root))


def index_sheets(collection, paths):
    """Read the sheet files under ``paths`` into the collection's sheet store (new and changed files only).

    Called by ``mirsearch index`` after the audio; returns the :class:`~mirsearch.index.sheets.SheetUpdateReport`.
    """
    from mirsearch.index.sheets import NotationReader, SheetStore, SheetUpdateReport, scan_sheet_files

    paths = [os.fspath(p) for p in paths]
    if not scan_sheet_files(paths):
        return SheetUpdateReport()
    return SheetStore.for_collection(collection.root).update(paths, NotationReader())


@register("sheets", request=SheetSearchRequest, area="search", summary="find the page and system of sheet music "
          "an audio excerpt corresponds to")  # fmt: skip
def run_sheets(context: Context, request: SheetSearchRequest) -> SheetSearchResult:
    from mirsearch.search.sheets import NotationSearchOptions, search_sheets_notation

    coll = context.require_collection("sheets")
    t0 = time.perf_counter()
    store = sheet_store(coll)
    options = NotationSearchOptions(top=request.top)
    q = request.query
    if q.samples is None:
        raise ParameterError("sheets: the query must be audio samples (an audio file), not chroma")
    matches = search_sheets_notation(store, q.samples, q.sr, options)
    stats = {
        "items": len(store),
        "samples": int(len(store.windows())),
        "ms": round((time.perf_counter() - t0) * 1e3, 1),
    }
    query = version_block(source=q.name, **request.params())
    return SheetSearchResult(matches, query, [], stats)


__all__ = ["SheetSearchRequest", "SheetSearchResult", "index_sheets", "sheet_store"]
