from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-12-02T02:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "usernames stored normalised (NFKC, case-folded; issue 11 item 13)"

# rescue.users.services.normalise_username is the rule from now on; names stored
# before it are rewritten to it here (inlined: a migration must not change when
# the code does). Control and formatting characters are dropped. A name whose
# normalised form is already taken (e.g. "Wang" beside "wang") keeps the older
# account's spelling; the newer account becomes "<name>#<id>" and is printed, so
# an admin can tell its user.


def _normalise(name: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    kept = "".join(
        ch
        for ch in folded
        if unicodedata.category(ch) not in {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"}
    )
    return " ".join(kept.split()) or f"user-{abs(hash(name)) % 100000}"


async def _normalise_usernames() -> None:
    import sys

    from rescue.users.tables import User

    rows = await User.select(User.id, User.username).order_by(User.id)
    taken = {r["username"] for r in rows}
    for row in rows:
        new = _normalise(row["username"])
        if new == row["username"]:
            continue
        if new in taken:
            new = f"{new}#{row['id']}"[:100]
            print(f"username of user {row['id']} renamed to {new!r}", file=sys.stderr)
        taken.discard(row["username"])
        taken.add(new)
        await User.update({User.username: new}).where(User.id == row["id"])


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="rescue", description=DESCRIPTION)
    manager.add_raw(_normalise_usernames)
    return manager
