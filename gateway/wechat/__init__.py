"""WeChat's side of the gateway: the callback handlers, their signature checks, crypto and XML."""
