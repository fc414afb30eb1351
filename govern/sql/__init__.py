"""SQL kept in one place per concern: spatial and bulk work runs set-wise in PostGIS."""
