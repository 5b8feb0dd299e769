"""BlueKing's conventions: the response envelope, request parameters and caller authentication."""
