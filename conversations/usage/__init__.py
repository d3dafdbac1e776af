"""Usage and cost of model calls, and per-user quotas (issue 20).

- `models`: the per-call ledger (`UsageRecord`), its daily roll-up (`UsageDay`), the
  per-user quota overrides and lock row (`UserQuota`), and the reservations of turns in
  flight (`QuotaReservation`);
- `services`: `record_call` (one model call, in the transaction that stores its reply)
  and `admit` (the quota check of a turn, in the transaction that begins it);
- `selectors`: the usage report and what is left of the quota;
- `quota`: the limits in force and the periods (UTC days and months).
"""
