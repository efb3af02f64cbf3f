"""Built-in catalogs: the generic HTTP statuses, and two published API error references.

`GENERIC` is the default, where a new API starts (or from a catalog of its own).
`DETAIL_API` reproduces the Ontora API's error reference (`{"detail", "code"}` bodies) and
`ENVELOPE_API` the Orq.ai API's (`{"error": {...}}` bodies), exactly: they are for a server that
must answer with exactly those errors. `ErrorKit(catalog=DETAIL_API)` or
`ErrorKit(catalog=ENVELOPE_API)` selects a reference's whole behaviour (its codes, its body
shape and its doc URLs) in one line.
"""

from errorkit.catalogs.detail_api import DETAIL_API
from errorkit.catalogs.envelope_api import ENVELOPE_API
from errorkit.catalogs.generic import GENERIC

__all__ = ["DETAIL_API", "ENVELOPE_API", "GENERIC"]
