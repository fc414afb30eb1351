"""govern: a location data governor for mobile backends."""

from govern.app import create_app

__all__ = ["create_app"]
