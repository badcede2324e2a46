"""What the book needs and a library user does not: the claims its prose makes, the
profiles that size its experiments, its figure style (`figures`), the numbers written
into its prose (`prose`), and the seed article's model, kept as published.

`import sbmm` does not load it (its figure style needs matplotlib): a chapter imports
it itself, `from sbmm import book`, and calls `book.use_profile()`,
`book.check(...)`; a page that trains nothing calls `book.use_book_style()`."""

from .article import SharedBottomMultiTaskModel, as_shared_bottom, train_seed
from .claims import check, check_converged, pick_lr
from .figures import use_book_style
from .profiles import FIRST_WORLD, PROFILES, Profile, profile, use_profile

__all__ = [
    "FIRST_WORLD",
    "PROFILES",
    "Profile",
    "SharedBottomMultiTaskModel",
    "as_shared_bottom",
    "check",
    "check_converged",
    "pick_lr",
    "profile",
    "train_seed",
    "use_book_style",
    "use_profile",
]
