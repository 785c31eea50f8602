"""Generate the demo CRM: an SQLite database of fictional UK customers.

Everything is made up and safe to publish: names come from short built-in lists, towns are
fictional (radio and television), postcodes start with ``Q`` (never the first letter of a
real UK postcode), phone numbers sit in the Ofcom drama ranges (01632 960xxx, 07700 900xxx),
emails use the reserved ``example.com/.org/.net`` domains and IP addresses the documentation
ranges (RFC 5737, RFC 3849). Dates are computed from a fixed reference day, so a seed always
gives the same database.

One well-known subject, Jane Doe (``jane.doe@example.com``, ``C-1001``, ``+441632960001``),
has rows in every table, so every request type can be tried against her.

There are no foreign-key constraints: the relations are declared in the dataset map
(``dataset_map.json``), which the fulfilment connector follows, and retained financial rows
must outlive the deleted contact row they point to.
"""

import os
import random
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

JANE_DOE = {
    "customer_id": "C-1001",
    "first_name": "Jane",
    "last_name": "Doe",
    "email": "jane.doe@example.com",
    "phone": "+441632960001",
}

# A fixed "today": the database must not change with the day it was generated.
REFERENCE_DAY = date(2025, 6, 30)

SCHEMA = """
CREATE TABLE contacts (
    customer_id TEXT PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT UNIQUE,
    phone TEXT,
    job_title TEXT,
    company TEXT,
    address_line1 TEXT,
    address_line2 TEXT,
    town TEXT,
    postcode TEXT,
    date_of_birth TEXT,
    created_at TEXT NOT NULL,
    processing_restricted INTEGER NOT NULL DEFAULT 0 CHECK (processing_restricted IN (0, 1))
);
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    order_date TEXT NOT NULL,
    amount NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    billing_name TEXT,
    billing_address TEXT,
    billing_postcode TEXT,
    delivery_address TEXT,
    delivery_postcode TEXT,
    payment_method TEXT,
    payment_last4 TEXT
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
CREATE TABLE marketing_preferences (
    id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'phone', 'post', 'sms')),
    consented INTEGER NOT NULL CHECK (consented IN (0, 1)),
    source TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (customer_id, channel)
);
CREATE TABLE call_recordings (
    recording_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_s INTEGER NOT NULL,
    agent TEXT,
    recording_uri TEXT
);
CREATE INDEX ix_call_recordings_customer_id ON call_recordings (customer_id);
CREATE TABLE survey_responses (
    response_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    survey TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    score INTEGER,
    comment TEXT
);
CREATE INDEX ix_survey_responses_customer_id ON survey_responses (customer_id);
CREATE TABLE event_attendance (
    id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_date TEXT NOT NULL,
    attended INTEGER NOT NULL CHECK (attended IN (0, 1)),
    dietary_requirements TEXT
);
CREATE INDEX ix_event_attendance_customer_id ON event_attendance (customer_id);
CREATE TABLE web_activity (
    id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL,
    cookie_id TEXT NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    last_seen TEXT NOT NULL
);
CREATE INDEX ix_web_activity_customer_id ON web_activity (customer_id);
"""

TABLES = (
    "contacts",
    "orders",
    "marketing_preferences",
    "call_recordings",
    "survey_responses",
    "event_attendance",
    "web_activity",
)

FIRST_NAMES = (
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Noah", "Emily",
    "Charlie", "Grace", "Thomas", "Sophie", "Oscar", "Lily", "William", "Freya", "James",
    "Ella", "Arthur", "Evie", "Alfie", "Poppy", "Henry", "Florence", "Leo", "Ruby", "Freddie",
    "Alice", "Rhys", "Siobhan", "Callum", "Morag", "Dylan", "Ffion", "Ravi", "Priya", "Imran",
    "Aisha", "Tomasz", "Zofia", "Chidi", "Adaeze", "Wei", "Mei", "Kwame", "Niamh", "Eilidh",
    "Gareth",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Hughes", "Edwards", "Turner", "Hill", "Cooper", "Ward",
    "Morris", "Khan", "Ahmed", "MacDonald", "Campbell", "Murphy", "O'Brien", "Kowalski",
    "Okafor", "Chen", "Singh", "Mensah", "Fraser", "Baker", "Harris", "Lewis", "Price",
)  # fmt: skip
# Fictional towns from radio and television: none is a real postal town.
TOWNS = (
    "Ambridge", "Borchester", "Felpersham", "Walford", "Weatherfield", "Holby", "Causton",
    "Pagford", "Trumpton", "Greendale", "Candleford", "Grimley", "Royston Vasey", "Letherbridge",
)  # fmt: skip
STREETS = (
    "High Street", "Station Road", "Church Lane", "Mill Lane", "Victoria Road", "The Green",
    "Orchard Close", "Park Avenue", "Queen Street", "Manor Way", "Albert Square", "Coronation "
    "Street", "Brookfield Lane", "Meadow Rise", "Kings Road", "Chapel Row",
)  # fmt: skip
FLATS = ("Flat 1", "Flat 2", "Flat 3A", "Unit 4", "The Old Forge", "Rose Cottage")
COMPANIES = (
    "Borchester Land Ltd", "Ambridge Organics", "Walford Motors", "Weatherfield Textiles",
    "Holby Dental Practice", "Causton Estate Agents", "Pagford Parish Council",
    "Felpersham Logistics", "Trumpton Fire Safety", "Greendale Post Services",
    "Example Widgets Ltd", "Grimley Brass Co-operative", None,
)  # fmt: skip
JOB_TITLES = (
    "Office Manager", "Finance Director", "Operations Manager", "Procurement Officer",
    "Head of Marketing", "Practice Manager", "IT Administrator", "Sales Executive",
    "Managing Director", "HR Advisor", "Bookkeeper", "Facilities Coordinator", None,
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
# Letters never used in the inward code's last two positions (Royal Mail).
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
AGENTS = ("Sam Archer", "Priya Grundy", "Tom Carter", "Helen Aldridge", "Ed Snell")
SURVEYS = ("Customer satisfaction 2024", "Delivery experience", "Net Promoter Score Q1 2025")
COMMENTS = (
    "Quick delivery, thank you.",
    "The invoice arrived late.",
    "Friendly staff on the phone.",
    "Packaging could be recyclable.",
    "Would recommend to colleagues.",
    None,
)
EVENTS = (
    ("Borchester Trade Show", date(2024, 9, 12)),
    ("Spring Product Webinar", date(2025, 3, 20)),
    ("Customer Summer Lunch", date(2025, 6, 5)),
)
# Art. 9: some of these reveal health (allergies, coeliac) or religion (halal, kosher).
DIETARY = (None, None, None, "vegetarian", "vegan", "halal", "kosher", "coeliac", "nut allergy")
SOURCES = ("website sign-up form", "trade show", "order checkout", "phone call")
PAYMENT_METHODS = ("visa", "mastercard", "amex", "bacs")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
)
# Documentation address ranges: never routed on the internet.
IPV4_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")

Row = tuple[object, ...]


def create_demo_crm(path: str | Path, *, contacts: int = 300, seed: int = 42) -> Path:
    """Build the demo CRM at ``path``, replacing any file there, and return its path.

    ``contacts`` counts Jane Doe. The file is written next to its destination and moved into
    place, so a reader never sees a half-built database.
    """
    if not 1 <= contacts <= 1000:
        # The Ofcom drama ranges hold 1,000 landline and 1,000 mobile numbers.
        raise ValueError("contacts must be between 1 and 1000")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Per process: two workers starting together each build their own, and the last move wins.
    building = target.with_name(f".{target.name}.{os.getpid()}.building")
    building.unlink(missing_ok=True)
    rows = _generate(random.Random(seed), contacts)
    connection = sqlite3.connect(building)
    try:
        with connection:
            connection.executescript(SCHEMA)
            for table in TABLES:
                if rows[table]:
                    # Generated rows leave the trailing defaulted columns (the restriction flag).
                    names = [
                        column[1] for column in connection.execute(f"PRAGMA table_info({table})")
                    ][: len(rows[table][0])]
                    marks = ", ".join("?" * len(names))
                    connection.executemany(
                        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows[table]
                    )
    finally:
        connection.close()
    os.replace(building, target)
    return target


def _generate(rng: random.Random, contacts: int) -> dict[str, list[Row]]:
    rows: dict[str, list[Row]] = {table: [] for table in TABLES}
    emails = {JANE_DOE["email"]}
    landlines = rng.sample(range(2, 1000), k=min(contacts, 998))
    mobiles = rng.sample(range(1000), k=contacts)
    _add_jane(rows)
    for index in range(1, contacts):
        customer_id = f"C-{1001 + index}"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = _unique_email(rng, first, last, emails)
        if rng.random() < 0.6:
            phone = f"+447700900{mobiles[index]:03d}"
        else:
            phone = f"+441632960{landlines[index % len(landlines)]:03d}"
        street = f"{rng.randint(1, 180)} {rng.choice(STREETS)}"
        town, postcode = rng.choice(TOWNS), _postcode(rng)
        created = _moment(rng, days_back=6 * 365)
        company = rng.choice(COMPANIES)
        rows["contacts"].append(
            (
                customer_id,
                first,
                last,
                email,
                phone if rng.random() < 0.9 else None,
                rng.choice(JOB_TITLES) if company else None,
                company,
                street,
                rng.choice(FLATS) if rng.random() < 0.2 else None,
                town,
                postcode,
                _birth_date(rng),
                created,
            )
        )
        address = f"{street}, {town}"
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 5))):
            delivery = (address, postcode) if rng.random() < 0.8 else _other_address(rng)
            _add_order(rows, rng, customer_id, f"{first} {last}", (address, postcode), delivery)
        for channel in rng.sample(("email", "phone", "post", "sms"), k=rng.randint(0, 4)):
            rows["marketing_preferences"].append(
                (
                    None,
                    customer_id,
                    channel,
                    int(rng.random() < 0.55),
                    rng.choice(SOURCES),
                    _moment(rng, days_back=900),
                )
            )
        for _ in range(rng.choice((0, 0, 0, 1, 2))):
            _add_call(rows, rng, customer_id)
        if rng.random() < 0.3:
            _add_survey(rows, rng, customer_id)
        for event_name, event_day in rng.sample(EVENTS, k=rng.choice((0, 0, 0, 1, 2))):
            rows["event_attendance"].append(
                (
                    None,
                    customer_id,
                    event_name,
                    event_day.isoformat(),
                    int(rng.random() < 0.8),
                    rng.choice(DIETARY),
                )
            )
        for _ in range(rng.choice((0, 1, 1, 2))):
            _add_web_visit(rows, rng, customer_id)
    return rows


def _add_jane(rows: dict[str, list[Row]]) -> None:
    """Jane Doe: fixed values, and at least one row in every table."""
    jane_id = JANE_DOE["customer_id"]
    address, postcode = "14 Brookfield Lane", "QA1 4BZ"
    rows["contacts"].append(
        (
            jane_id,
            JANE_DOE["first_name"],
            JANE_DOE["last_name"],
            JANE_DOE["email"],
            JANE_DOE["phone"],
            "Office Manager",
            "Borchester Land Ltd",
            address,
            None,
            "Ambridge",
            postcode,
            "1984-03-17",
            "2021-02-08T10:15:00+00:00",
        )
    )
    billing = f"{address}, Ambridge"
    rows["orders"] += [
        ("O-100001", jane_id, "2023-11-02", "149.99", "GBP", "Jane Doe", billing, postcode,
         billing, postcode, "visa", "4242"),
        ("O-100002", jane_id, "2025-05-19", "36.50", "GBP", "Jane Doe", billing, postcode,
         "Borchester Land Ltd, 2 Market Street, Borchester", "QB7 2DW", "mastercard", "5454"),
    ]  # fmt: skip
    rows["marketing_preferences"] += [
        (None, jane_id, "email", 1, "website sign-up form", "2021-02-08T10:15:00+00:00"),
        (None, jane_id, "sms", 0, "order checkout", "2023-11-02T18:40:00+00:00"),
        (None, jane_id, "post", 1, "trade show", "2024-09-12T14:05:00+00:00"),
    ]
    rows["call_recordings"].append(
        (
            "R-500001",
            jane_id,
            "2025-05-21T09:32:00+00:00",
            412,
            "Helen Aldridge",
            "https://recordings.example.net/calls/R-500001.wav",
        )
    )
    rows["survey_responses"].append(
        ("S-700001", jane_id, "Delivery experience", "2025-05-24T20:11:00+00:00", 9,
         "The courier was very helpful.")
    )  # fmt: skip
    rows["event_attendance"].append(
        (None, jane_id, "Borchester Trade Show", "2024-09-12", 1, "vegetarian")
    )
    rows["web_activity"].append(
        (
            None,
            jane_id,
            "ck_4f9a1c2e7b3d4e5f",
            "203.0.113.42",
            USER_AGENTS[1],
            "2025-06-28T08:03:00+00:00",
        )
    )


def _add_order(
    rows: dict[str, list[Row]],
    rng: random.Random,
    customer_id: str,
    billing_name: str,
    billing: tuple[str, str],
    delivery: tuple[str, str],
) -> None:
    method = rng.choice(PAYMENT_METHODS)
    amount = Decimal(rng.randint(500, 250_000)) / 100
    rows["orders"].append(
        (
            f"O-{100001 + len(rows['orders'])}",
            customer_id,
            _day(rng, days_back=7 * 365),
            str(amount),
            "GBP",
            billing_name,
            billing[0],
            billing[1],
            delivery[0],
            delivery[1],
            method,
            None if method == "bacs" else f"{rng.randint(0, 9999):04d}",
        )
    )


def _add_call(rows: dict[str, list[Row]], rng: random.Random, customer_id: str) -> None:
    recording_id = f"R-{500001 + len(rows['call_recordings'])}"
    rows["call_recordings"].append(
        (
            recording_id,
            customer_id,
            _moment(rng, days_back=365),
            rng.randint(30, 1800),
            rng.choice(AGENTS),
            f"https://recordings.example.net/calls/{recording_id}.wav",
        )
    )


def _add_survey(rows: dict[str, list[Row]], rng: random.Random, customer_id: str) -> None:
    rows["survey_responses"].append(
        (
            f"S-{700001 + len(rows['survey_responses'])}",
            customer_id,
            rng.choice(SURVEYS),
            _moment(rng, days_back=540),
            rng.randint(0, 10),
            rng.choice(COMMENTS),
        )
    )


def _add_web_visit(rows: dict[str, list[Row]], rng: random.Random, customer_id: str) -> None:
    if rng.random() < 0.8:
        ip_address = f"{rng.choice(IPV4_PREFIXES)}{rng.randint(1, 254)}"
    else:
        ip_address = f"2001:db8::{rng.randint(1, 0xFFFF):x}"
    rows["web_activity"].append(
        (
            None,
            customer_id,
            f"ck_{rng.getrandbits(64):016x}",
            ip_address,
            rng.choice(USER_AGENTS),
            _moment(rng, days_back=400),
        )
    )


def _unique_email(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    local = f"{first}.{last}".lower().replace("'", "")
    domain = rng.choice(EMAIL_DOMAINS)
    email, number = f"{local}@{domain}", 1
    while email in taken:
        number += 1
        email = f"{local}{number}@{domain}"
    taken.add(email)
    return email


def _postcode(rng: random.Random) -> str:
    # No real UK postcode area starts with Q.
    outward = f"Q{rng.choice('ABCDEFGHJKLMNPRSTUWY')}{rng.randint(1, 20)}"
    return f"{outward} {rng.randint(1, 9)}{_pick(rng, INWARD_LETTERS, 2)}"


def _other_address(rng: random.Random) -> tuple[str, str]:
    return f"{rng.randint(1, 180)} {rng.choice(STREETS)}, {rng.choice(TOWNS)}", _postcode(rng)


def _pick(rng: random.Random, letters: Sequence[str], count: int) -> str:
    return "".join(rng.choice(letters) for _ in range(count))


def _birth_date(rng: random.Random) -> str | None:
    if rng.random() < 0.25:
        return None
    return (date(1950, 1, 1) + timedelta(days=rng.randint(0, 50 * 365))).isoformat()


def _day(rng: random.Random, *, days_back: int) -> str:
    return (REFERENCE_DAY - timedelta(days=rng.randint(0, days_back))).isoformat()


def _moment(rng: random.Random, *, days_back: int) -> str:
    # Office hours: 08:00 to 18:00.
    start = datetime(REFERENCE_DAY.year, REFERENCE_DAY.month, REFERENCE_DAY.day, 18)
    moment = start - timedelta(days=rng.randint(0, days_back), minutes=rng.randint(0, 600))
    return f"{moment.isoformat()}+00:00"
