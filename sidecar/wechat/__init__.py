"""The WeChat API client and the central access-token control built on it."""
