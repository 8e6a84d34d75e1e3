"""Writes the bundled sample events: a realistic, repeatable mix of Segment calls for ./run_local.sh."""

import argparse
import gzip
import json
import random
import unicodedata
from pathlib import Path

FIRST = [
    "Peter",
    "Samir",
    "Michael",
    "Joanna",
    "Bill",
    "Milton",
    "Tom",
    "Anne",
    "Dom",
    "Lawrence",
    "Nina",
    "Drew",
    "Bob",
    "Rob",
    "Stan",
    "Brian",
    "Ada",
    "Grace",
    "Linus",
    "Margaret",
]
LAST = [
    "Gibbons",
    "Nagheenanajar",
    "Bolton",
    "Smykowski",
    "Lumbergh",
    "Waddams",
    "Portwood",
    "O'Brien",
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Nguyen",
    "Garcia",
    "Müller",
]
CITIES = [
    ("Austin", "TX", "78701", "USA"),
    ("Boston", "MA", "02110", "USA"),
    ("East Greenwich", "RI", "02818", "US"),
    ("Berlin", "BE", "10115", "Germany"),
    ("Lyon", "ARA", "69001", "France"),
]
TITLES = ["VP of Derp", "Engineer", "Team Lead", "Product Manager", "CTO", "Analyst"]
PLANS = ["free", "team", "business", "enterprise"]
COMPANY_WORDS = [
    "Initech",
    "Initrode",
    "Chotchkie's",
    "Teemo Industries",
    "Penetrode",
    "Hooli",
    "Globex",
    "Acme",
    "Umbrella",
    "Stark",
]


def _ts(i: int) -> str:
    return f"2026-11-{1 + i // 1440 % 27:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00.000Z"


def _enabled(rng: random.Random) -> dict:
    return {"Salesforce": True} if rng.random() < 0.9 else {"All": True, "Salesforce": False}


def ascii_fold(text: str) -> str:
    """`Müller` -> `Muller`: Salesforce's email fields take ASCII addresses only."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def people(n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = ascii_fold(f"{first}.{last}{i}@example.com".lower().replace("'", ""))
        if i % 37 == 0:
            email = ascii_fold(f"{first}.o'{last}{i}@example.com".lower())  # quotes in emails are legal
        out.append(
            {
                "userId": f"user-{i}",
                "first": first,
                "last": last,
                "email": email,
                "company": rng.choice(COMPANY_WORDS),
                "city": rng.choice(CITIES),
            }
        )
    return out


def identify(i: int, person: dict, rng: random.Random) -> dict:
    city, state, zip_code, country = person["city"]
    traits = {
        "email": person["email"],
        "title": rng.choice(TITLES),
        "phone": f"555-01{i % 100:02d}",
        "plan": rng.choice(PLANS),
    }
    if rng.random() < 0.5:
        traits["name"] = f"{person['first']} {person['last']}"
    else:
        traits["firstName"], traits["lastName"] = person["first"], person["last"]
    if rng.random() < 0.5:
        traits["company"] = person["company"]
    else:
        traits["company"] = {"id": i, "name": person["company"]}
    if rng.random() < 0.5:
        traits["address"] = {
            "street": f"{i} Forest Lane",
            "city": city,
            "state": state,
            "postalCode": zip_code,
            "country": country,
        }
    else:
        traits.update(street=f"{i} Forest Lane", city=city, state=state, postalCode=zip_code, country=country)
    if rng.random() < 0.1:
        traits["favoriteColor"] = rng.choice(["red", "green", "blue"])  # no such field in the sample org
    if rng.random() < 0.02:
        traits["title"] = "Chief " * 40  # longer than Lead.Title (128): trimmed
    return {
        "type": "identify",
        "messageId": f"msg-{i}",
        "timestamp": _ts(i),
        "userId": person["userId"],
        "traits": traits,
        "integrations": _enabled(rng),
    }


def group(i: int, company_no: int, rng: random.Random) -> dict:
    city, state, zip_code, country = rng.choice(CITIES)
    traits = {
        "name": f"{COMPANY_WORDS[company_no % len(COMPANY_WORDS)]} {company_no}",
        "address": {
            "street": f"{9000 + company_no} Forest Lane",
            "city": city,
            "state": state,
            "postalCode": zip_code,
            "country": country,
        },
        "phone": f"222-555-{company_no:04d}",
        "employees": rng.randint(1, 5000),
        "website": f"https://company{company_no}.example.com",
        "description": "Makes great products",
    }
    return {
        "type": "group",
        "messageId": f"msg-{i}",
        "timestamp": _ts(i),
        "userId": f"user-{i % 150}",
        "groupId": str(1000 + company_no),
        "traits": traits,
        "integrations": _enabled(rng),
    }


def track(i: int, rng: random.Random) -> dict:
    kind = rng.choice(["track", "page", "screen"])
    event = {
        "type": kind,
        "messageId": f"msg-{i}",
        "timestamp": _ts(i),
        "userId": f"user-{i % 150}",
        "properties": {"path": "/pricing"},
        "integrations": {"Salesforce": True},
    }
    if kind == "track":
        event["event"] = rng.choice(["Signed Up", "Issue Submitted", "Order Completed"])
    else:
        event["name"] = "Pricing"
    return event


BAD_LINES = [
    '{"type": "identify", "messageId": "bad-1", "traits": {"email": "half@example.com"',  # cut off
    "not json at all",
    '["an", "array"]',
    '{"type": "purchase", "messageId": "bad-2", "userId": "u1", "integrations": {"Salesforce": true}}',
    '{"messageId": "bad-3", "userId": "u1", "traits": {"email": "x@example.com"}}',
    '{"type": "identify", "messageId": "bad-4", "userId": "u1", "traits": {"name": "No Email"},'
    ' "integrations": {"Salesforce": true}}',
    '{"type": "group", "messageId": "bad-5", "userId": "u1", "groupId": "999", "traits": {"employees": 3},'
    ' "integrations": {"Salesforce": true}}',
    '{"type": "group", "messageId": "bad-6", "userId": "u1", "traits": {"name": "No Group Id"},'
    ' "integrations": {"Salesforce": true}}',
]


def generate(total: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    folks = people(max(total // 6, 10), rng)
    lines: list[str] = []
    for i in range(total - len(BAD_LINES)):
        roll = rng.random()
        if roll < 0.62:
            event = identify(i, rng.choice(folks), rng)
        elif roll < 0.80:
            event = group(i, rng.randrange(max(total // 30, 3)), rng)
        else:
            event = track(i, rng)
        lines.append(json.dumps(event, ensure_ascii=False))
        if rng.random() < 0.01:
            lines.append(lines[-1])  # an at-least-once source delivered it twice
    lines.extend(BAD_LINES)
    rng.shuffle(lines)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1000, help="how many lines to write (default 1000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed, for repeatable output")
    parser.add_argument(
        "--output",
        default=str(Path(__file__).parent / "events" / "sample-mix.jsonl.gz"),
        help="file to write; gzip-compressed when it ends in .gz",
    )
    args = parser.parse_args()
    data = "\n".join(generate(args.events, args.seed)) + "\n"
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".gz":
        with gzip.GzipFile(out, "wb", mtime=0) as f:  # mtime 0: the same bytes on every run
            f.write(data.encode())
    else:
        out.write_text(data)
    print(f"wrote {args.events} lines to {out}")


if __name__ == "__main__":
    main()
