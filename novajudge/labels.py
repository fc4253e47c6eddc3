"""Human preference labels: one spelling rule shared by datasets, manifests and calibration.

Kept free of pandas so the generate Lambda (whose bundle has no pandas) can validate a user's
`preference` column with the same rule `novajudge calibrate` applies to a labels file.
"""

from __future__ import annotations

#: Accepted spellings (case-insensitive) → canonical label, in terms of the *models*:
#: A = baseline, B = challenger, whatever order the judge saw them in.
PREFERENCE_SPELLINGS: dict[str, str] = {"a": "A", "b": "B", "tie": "tie"}


def parse_preference(value: object) -> str | None:
    """The canonical label for `value`, or None when it is not one of A, B, tie."""
    if not isinstance(value, str):
        return None
    return PREFERENCE_SPELLINGS.get(value.strip().casefold())
