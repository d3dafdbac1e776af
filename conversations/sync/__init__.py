"""The changes feed: what changed in a user's data since a cursor, never missing a change.

A mobile app that was offline or in the background asks `GET /api/v1/sync/?cursor=`
and replays the changes in order (Stream's `/sync`, Sendbird's change logs). Every
write that changes what a user sees records its changes in the same transaction
(`conversations.effects`), numbered by a per-user counter row that the writing
transaction holds locked until it commits: changes of one user commit in the order
of their numbers, so a reader that saw number N has seen every change before it.
"""
