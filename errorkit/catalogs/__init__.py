"""Built-in catalogs: the generic HTTP statuses and the two published API error references.

`ErrorKit(catalog=DETAIL_API)` or `ErrorKit(catalog=ENVELOPE_API)` selects a document's
whole behaviour (its codes, its body shape and its doc URLs) in one line.
"""

from errorkit.catalogs.detail_api import DETAIL_API
from errorkit.catalogs.envelope_api import ENVELOPE_API
from errorkit.catalogs.generic import GENERIC

__all__ = ["DETAIL_API", "ENVELOPE_API", "GENERIC"]
