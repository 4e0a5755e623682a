"""Vector-store backends, one module each, loaded lazily by URL scheme."""
