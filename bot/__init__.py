"""先锋 Pioneer: a WeCom bot for the Party organisation of a factory workshop."""

__version__ = "0.1.0"
