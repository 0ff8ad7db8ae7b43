"""Local stand-ins for WeCom, for tests and the simulator page."""
