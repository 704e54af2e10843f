"""Popularity charts and cold start: what a user gets when neighbours cannot fill their list.

An artist's popularity is its number of listeners (users with plays > 0 of it), globally and per country;
listeners rather than summed plays, so a few heavy users cannot dominate. Charts rank by listeners, ties by the
lower artist column.

Cold start: a user without plays has no neighbours, so their list is their country's chart (source 'country'),
then the global chart ('global'), skipping artists already listed or banned (already played). The same filling
completes any list the neighbours left short.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

SOURCES = ("neighbours", "country", "global")  # the ``source`` codes of a recommendation
FALLBACK_SIZE = 100  # chart length written for users the batch never saw


@dataclass
class PopularityCharts:
    """Listener counts: ``global_listeners`` (n_artists,) and ``country_listeners`` CSR (n_countries, n_artists)."""

    global_listeners: np.ndarray
    country_listeners: sp.csr_matrix
    _charts: dict = field(default_factory=dict, repr=False)

    def chart(self, country: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """``(artists, listeners)`` of the country's chart (``country`` -1: the global chart), every artist with at
        least one listener, most listeners first (ties: lower artist)."""
        if country not in self._charts:
            if country < 0:
                listeners = self.global_listeners
                artists = np.flatnonzero(listeners > 0)
                counts = listeners[artists]
            else:
                row = self.country_listeners[country]
                artists, counts = row.indices, row.data
            order = np.lexsort((artists, -counts))
            self._charts[country] = (artists[order].astype(np.int32), counts[order].astype(np.float32))
        return self._charts[country]


def popularity_charts(plays: sp.csr_matrix, country: np.ndarray, n_countries: int) -> PopularityCharts:
    """Listener counts from ``plays`` CSR (n_users, n_artists) and each user's ``country`` code (-1: missing)."""
    listened = plays.tocsr().astype(np.float32)
    listened.data = (listened.data > 0).astype(np.float32)
    listened.eliminate_zeros()
    known = np.flatnonzero(country >= 0)
    membership = sp.csr_matrix(
        (np.ones(len(known), np.float32), (country[known], known)), shape=(n_countries, plays.shape[0])
    )
    per_country = (membership @ listened).tocsr()
    per_country.sort_indices()
    return PopularityCharts(np.bincount(listened.indices, minlength=plays.shape[1]), per_country)


def fill_from_popular(
    artist: np.ndarray,
    score: np.ndarray,
    source: np.ndarray,
    banned: sp.csr_matrix,
    country: np.ndarray,
    charts: PopularityCharts,
) -> None:
    """Complete, in place, every row of ``artist``/``score``/``source`` (n_query, n) that has -1 places: the user's
    country chart first (``country``: (n_query,) codes, -1 missing), then the global chart; never an artist in the
    row's ``banned`` entries or already in the row. Scores are listener counts. A row stays short only when no
    artist with a listener is left."""
    n = artist.shape[1]
    as_lists = {}  # chart code -> (artists, listeners) as Python lists, converted once
    for row in np.flatnonzero((artist < 0).any(1)):
        filled = int((artist[row] >= 0).sum())
        taken = set(banned.indices[banned.indptr[row] : banned.indptr[row + 1]].tolist())
        taken.update(artist[row, :filled].tolist())
        lists = [(-1, SOURCES.index("global"))]
        if country[row] >= 0:
            lists.insert(0, (int(country[row]), SOURCES.index("country")))
        for code, source_code in lists:
            if code not in as_lists:
                as_lists[code] = tuple(x.tolist() for x in charts.chart(code))
            for a, s in zip(*as_lists[code]):
                if filled == n:
                    break
                if a not in taken:
                    artist[row, filled], score[row, filled], source[row, filled] = a, s, source_code
                    taken.add(a)
                    filled += 1
