"""``oafin db upgrade``: bring the warehouse a config file names to the schema this code needs."""

from __future__ import annotations

from pathlib import Path

from oafin.config import load_settings
from oafin.warehouse.migrate import upgrade
from oafin.warehouse.store import open_engine


def upgrade_command(config: Path) -> int:
    """Run the missing migrations (one transaction) and say from which revision to which."""
    settings = load_settings(config)
    engine = open_engine(settings.warehouse_url)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if before.kind == "empty":
        print(f"created the warehouse {where} at schema revision {after.revision}")
    elif before.revision == after.revision and before.stamped:
        print(f"the warehouse {where} is already at schema revision {after.revision}: nothing to do")
    else:
        made = "" if before.stamped else " (recognised: made by a release before migrations)"
        print(
            f"upgraded the warehouse {where} from schema revision {before.revision}{made} to {after.revision}"
        )
    return 0
