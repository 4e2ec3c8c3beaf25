"""Demo data: a seeded, reproducible book of business (accounts, contacts, six months of activity).

`generate_book(BookSpec())` is what `cse demo` and the benchmarks load; see book.py for how churn and expansion
are driven by hidden behaviours so the churn model has real signal to learn.
"""

from app.demo.book import Book, generate_book, monthly_churn_rates
from app.demo.spec import CORE_FEATURES, FEATURES, MILESTONES, PLANS, BookSpec

__all__ = [
    "CORE_FEATURES",
    "FEATURES",
    "MILESTONES",
    "PLANS",
    "Book",
    "BookSpec",
    "generate_book",
    "monthly_churn_rates",
]
