"""Search (not built yet): the MnasNet reward, NetAdapt and platform-aware NAS running on
predicted latency and real accuracy evaluators."""
