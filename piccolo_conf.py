"""Piccolo configuration: the engine comes from ``DATABASE_URL`` (rescue.settings)."""

from piccolo.conf.apps import AppRegistry

from rescue.db import make_engine

DB = make_engine()

APP_REGISTRY = AppRegistry(apps=["rescue.piccolo_app"])
