"""Company, domain and person names for the demo book.

Names are built from word lists rather than a faker library so the book needs no extra dependency and a seed
always yields the same names. Uniqueness is by construction (each company gets a distinct word pair), not by
rejection sampling, so generation time does not grow with the size of the book.
"""

from __future__ import annotations

import numpy as np

PREFIXES = (
    "Bright", "North", "Blue", "Stone", "Silver", "Red", "Green", "Iron", "Clear", "Swift", "True", "Bold",
    "Oak", "Pine", "Maple", "Cedar", "River", "Harbor", "Summit", "Peak", "Sun", "Moon", "Star", "Sky",
    "Cloud", "Storm", "Frost", "Ember", "Copper", "Golden", "Crystal", "Coral", "Amber", "Jade", "Ivory",
    "Falcon", "Hawk", "Fox", "Wolf", "Bear", "Lion", "Otter", "Raven", "Wren", "Lark", "Nova", "Vector",
    "Pixel", "Quantum", "Prism", "Pulse", "Spark", "Apex", "Zenith", "Orbit", "Atlas", "Vertex", "Echo",
    "Arc", "Beacon", "Anchor", "Compass", "Keystone", "Cobalt", "Indigo", "Scarlet", "Violet", "Sage",
    "Willow", "Aspen", "Birch", "Elm", "Hazel", "Juniper", "Meadow", "Prairie", "Canyon", "Mesa", "Delta",
    "Lagoon", "Tide", "Harvest", "Orchard", "Ridge", "Glen", "Vale", "Brook", "Fern", "Moss", "Thistle",
    "Clover", "Lumen", "Nimbus", "Kite", "Sparrow", "Pioneer", "Frontier", "Horizon", "Venture", "Urban",
    "Metro", "Civic", "Paper", "Signal", "Rapid", "Steady", "Open", "Kind", "Grand", "Little", "Wild",
)  # fmt: skip
SUFFIXES = (
    "lane", "works", "field", "bridge", "point", "path", "way", "line", "gate", "wood", "leaf", "light",
    "craft", "forge", "mark", "wise", "hub", "base", "nest", "shift", "loop", "stack", "scale", "mind",
    "spring", "side", "view", "port", "bay", "ford", "haven", "hill", "land", "mill", "yard", "well",
    "bloom", "root", "sail", "wing", "crest", "cliff", "dale", "grove", "shore", "front", "block", "cube",
    "dock", "flow", "grid", "kit", "logic", "note", "pad", "pilot", "route", "scope", "sense", "track",
    "vault", "ward", "ton", "beam", "bird", "castle", "deck", "fall", "glass", "house",
)  # fmt: skip
DESCRIPTORS = (
    "", "", "", "", " Labs", " Studio", " Group", " Partners", " Systems", " Analytics", " Digital",
    " Consulting", " Logistics", " Health", " Media", " Software", " Design", " Foods", " Energy", " Capital",
    " Robotics", " Education", " Marketing", " Architects", " Builders", " Travel", " Legal", " Ventures",
    " & Co", " Inc", " Ltd", " GmbH", " Agency",
)  # fmt: skip
TLDS = (".com", ".com", ".com", ".com", ".io", ".io", ".co", ".app", ".dev", ".net", ".ai", ".tech")

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James", "Mia",
    "William", "Amelia", "Benjamin", "Harper", "Lucas", "Evelyn", "Henry", "Abigail", "Alexander", "Emily",
    "Mason", "Ella", "Michael", "Elizabeth", "Ethan", "Camila", "Daniel", "Luna", "Jacob", "Sofia", "Logan",
    "Avery", "Jackson", "Mila", "Levi", "Aria", "Sebastian", "Scarlett", "Mateo", "Penelope", "Jack",
    "Layla", "Owen", "Chloe", "Theodore", "Victoria", "Aiden", "Madison", "Samuel", "Eleanor", "Joseph",
    "Grace", "John", "Nora", "David", "Riley", "Wyatt", "Zoey", "Matthew", "Hannah", "Luke", "Hazel",
    "Asher", "Lily", "Carter", "Ellie", "Julian", "Violet", "Grayson", "Lillian", "Leo", "Zoe", "Jayden",
    "Stella", "Gabriel", "Aurora", "Isaac", "Natalie", "Lincoln", "Emilia", "Anthony", "Everly", "Hudson",
    "Leah", "Dylan", "Aubrey", "Ezra", "Willow", "Thomas", "Addison", "Charles", "Lucy", "Christopher",
    "Audrey", "Jaxon", "Bella", "Maverick", "Nova", "Josiah", "Brooklyn", "Isaiah", "Paisley", "Andrew",
    "Savannah", "Elias", "Claire", "Joshua", "Skylar", "Nathan", "Isla", "Caleb", "Genesis", "Ryan",
    "Naomi", "Adrian", "Elena", "Miles", "Caroline", "Eli", "Eliana", "Nolan", "Anna", "Christian", "Maya",
    "Aaron", "Valentina", "Cameron", "Ruby", "Ezekiel", "Kennedy", "Colton", "Ivy", "Luca", "Ariana",
    "Priya", "Arjun", "Wei", "Mei", "Hiroshi", "Yuki", "Fatima", "Omar", "Aisha", "Mohammed", "Ingrid",
    "Lars", "Sven", "Astrid", "Mateus", "Lucia", "Diego", "Carmen", "Kwame", "Amara", "Chidi", "Zara",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez",
    "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
    "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks",
    "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins",
    "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales", "Fisher",
    "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham", "Reynolds",
    "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis",
    "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison",
    "Shah", "Chen", "Wang", "Zhang", "Liu", "Singh", "Kumar", "Tanaka", "Sato", "Suzuki", "Müller",
    "Schmidt", "Larsen", "Nilsson", "Silva", "Santos", "Okafor", "Mensah", "Haddad", "Novak", "Kowalski",
)  # fmt: skip
CSM_NAMES = (
    ("Maya", "Chen"), ("Daniel", "Okafor"), ("Priya", "Shah"), ("Lucas", "Moreau"), ("Hannah", "Berg"),
    ("Tom", "Alvarez"), ("Aisha", "Rahman"), ("Jonas", "Weber"), ("Sofia", "Ricci"), ("Ben", "Carter"),
    ("Grace", "Kim"), ("Omar", "Haddad"),
)  # fmt: skip
VENDOR_DOMAIN = "taskpilot.example"


def _word_pairs() -> list[tuple[str, str]]:
    return [(p, s) for p in PREFIXES for s in SUFFIXES if p.lower() != s]


def company_names(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Return `n` unique (name, domain) pairs, e.g. ("Brightlane Analytics", "brightlane.io").

    The domain is the name's word pair, so it is unique whenever the pair is; past the ~7,900 pairs the
    descriptor joins the domain ("bright-lane-analytics.com") and the name gets a space, which keeps both
    unique for books of up to a few hundred thousand accounts.
    """
    pairs = _word_pairs()
    primary = len(pairs)
    overflow = tuple(dict.fromkeys(d.strip() for d in DESCRIPTORS if d))
    total = primary * (1 + len(overflow))
    if n > total:
        raise ValueError(f"at most {total} distinct company names, asked for {n}")
    picks = rng.choice(total, size=n, replace=False) if n > primary else rng.choice(primary, n, replace=False)
    descriptor_idx = rng.integers(0, len(DESCRIPTORS), size=n)
    tld_idx = rng.integers(0, len(TLDS), size=n)
    names: list[str] = []
    domains: list[str] = []
    for pick, d_idx, t_idx in zip(picks.tolist(), descriptor_idx.tolist(), tld_idx.tolist(), strict=True):
        prefix, suffix = pairs[pick % primary]
        tld = TLDS[t_idx]
        if pick < primary:
            descriptor = DESCRIPTORS[d_idx]
            names.append(f"{prefix}{suffix}{descriptor}")
            domains.append(f"{prefix.lower()}{suffix}{tld}")
        else:
            descriptor = overflow[pick // primary - 1]
            names.append(f"{prefix} {suffix.capitalize()} {descriptor}")
            slug = "".join(ch for ch in descriptor.lower() if ch.isalnum())
            domains.append(f"{prefix.lower()}-{suffix}-{slug}{tld}")
    return names, domains


def person_names(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return first and last names (arrays of str) for `n` people."""
    first = np.asarray(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), size=n)]
    last = np.asarray(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), size=n)]
    return first, last


def csm_roster(count: int) -> list[tuple[str, str]]:
    """Return (name, email) for `count` CSMs; past the named roster, numbered CSMs keep emails unique."""
    roster = []
    for i in range(count):
        first, last = CSM_NAMES[i % len(CSM_NAMES)]
        tag = "" if i < len(CSM_NAMES) else str(i // len(CSM_NAMES) + 1)
        roster.append((f"{first} {last}", f"{first.lower()}.{last.lower()}{tag}@{VENDOR_DOMAIN}"))
    return roster
