"""Infrastructure the domain may use: row loading, the shared cache and its counters,
the channel layer, Django's middleware without thread hops.

`core` imports neither the domain (`conversations`, `accounts`) nor a surface (`api`).
"""
