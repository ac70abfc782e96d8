"""Live rooms over Socket.IO, by concern.

- `connections`: channel names, the record of each connection and this process's registry of them;
- `store`: where presence is kept (process memory, or Redis shared by every process);
- `presence`: who is online where, the heartbeat that re-writes it;
- `fanout`: room events and notifications sent to their channels after the commit;
- `handlers`: connecting, the `handler` decorator and the room events clients send;
- `coalesce`: live counts (votes) sent at most every 150 ms per idea or poll, the latest.

Losing access is rooms/revocation.py (the one revocation path); background work (`spawn`,
`settle`, the loops) is collab/tasks.py. Each module imports only those above it in this list.
"""
